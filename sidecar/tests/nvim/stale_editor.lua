-- Stale-writer e2e, the plugin editor (sidecar/tests/stale_writers.rs). Env: DS_PLUGIN, DS_BIN,
-- DS_FILE, DS_OUT, DS_LINE (0-based), DS_TEXT. Writes DS_OUT/ready once attached, waits for
-- DS_OUT/go, inserts the line DS_TEXT before line DS_LINE, writes DS_OUT/typed, then writes
-- the buffer text (lines joined by newlines: the plugin keeps the final newline as an empty
-- last line) to DS_OUT/text every 20 ms until DS_OUT/stop exists.
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
  io.stderr:write('stale_editor.lua: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
if not vim.wait(30000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5) then
  fail('did not attach')
end
write(env.DS_OUT .. '/ready', '')
if not vim.wait(120000, function()
  return exists(env.DS_OUT .. '/go')
end, 5) then
  fail('no go')
end
local line = tonumber(env.DS_LINE)
vim.api.nvim_buf_set_lines(buf, line, line, false, { env.DS_TEXT })
write(env.DS_OUT .. '/typed', '')
local function text()
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end
local t0 = vim.uv.now()
while not exists(env.DS_OUT .. '/stop') do
  write(env.DS_OUT .. '/text', text())
  vim.wait(20)
  if vim.uv.now() - t0 > 300000 then
    fail('never stopped')
  end
end
vim.cmd('qa!')
