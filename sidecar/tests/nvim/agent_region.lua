-- Types into a function while an agent edits the same region (sidecar/tests/agent_api.rs).
-- Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_OUT, DS_N. Writes DS_OUT/ready once attached, waits for
-- DS_OUT/go, types DS_N letters one at a time at an extmark (so remote edits above or before
-- it move where it types, as they would move a cursor), writes DS_OUT/typed, then writes the
-- buffer text (lines joined by newlines: the plugin keeps the final newline as an empty last
-- line, as in fuzz.lua) to DS_OUT/text every 20 ms until DS_OUT/stop exists.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
ds.setup({ name = 'Nvim', cmd = { env.DS_BIN, 'lsp' } })
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function write(p, s)
  local tmp = p .. '.tmp'
  local f = assert(io.open(tmp, 'wb'))
  f:write(s)
  f:close()
  assert(os.rename(tmp, p))
end
local function fail(msg)
  io.stderr:write('agent_region.lua: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
if not vim.wait(20000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5) then
  fail('did not attach')
end
write(env.DS_OUT .. '/ready', '')
if not vim.wait(60000, function()
  return exists(env.DS_OUT .. '/go')
end, 2) then
  fail('no go')
end
-- Row 1 (0-based), byte col 4: just before `let`.
local ns = vim.api.nvim_create_namespace('agent_region')
local mark = vim.api.nvim_buf_set_extmark(buf, ns, 1, 4, { right_gravity = true })
local n = tonumber(env.DS_N)
for i = 0, n - 1 do
  local p = vim.api.nvim_buf_get_extmark_by_id(buf, ns, mark, {})
  local ch = string.char(string.byte('a') + i % 26)
  vim.api.nvim_buf_set_text(buf, p[1], p[2], p[1], p[2], { ch })
  -- Let the plugin send the change and apply remote edits (typing pace, not synchronisation).
  vim.wait(1)
end
write(env.DS_OUT .. '/typed', '')
local function text()
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end
while not exists(env.DS_OUT .. '/stop') do
  write(env.DS_OUT .. '/text', text())
  vim.wait(20)
end
vim.cmd('qa!')
