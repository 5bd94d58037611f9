-- Crash e2e: type markers "<N1>", "<N2>"... at the start of random lines every few
-- ms, whether the daemon is up or not (it is killed with -9 and restarted many times), until
-- DS_OUT/stop exists; then write the markers typed to DS_OUT/markers and keep reporting the
-- buffer to DS_OUT/buf until DS_OUT/quit exists.
-- Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_OUT, DS_SEED.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
ds.setup({ name = 'Nia', cmd = { env.DS_BIN, 'lsp' }, reconnect_min = 50 })
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function fail(msg)
  io.stderr:write('crash.lua: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end
local function write(name, text)
  local tmp = env.DS_OUT .. '/' .. name .. '.tmp'
  local f = io.open(tmp, 'w')
  f:write(text)
  f:close()
  os.rename(tmp, env.DS_OUT .. '/' .. name)
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
local function attached()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened and st.client_id ~= nil
end
if not vim.wait(20000, attached, 5) then
  fail('did not attach')
end
math.randomseed(tonumber(env.DS_SEED) or 1)
write('ready', '')
local typed = {}
local i = 0
while not exists(env.DS_OUT .. '/stop') do
  i = i + 1
  local m = '<N' .. i .. '>'
  local n = vim.api.nvim_buf_line_count(buf)
  local row = math.random(0, n - 1)
  if math.random() < 0.1 then
    vim.api.nvim_buf_set_text(buf, row, 0, row, 0, { m, '' })
  else
    vim.api.nvim_buf_set_text(buf, row, 0, row, 0, { m })
  end
  typed[#typed + 1] = m
  vim.wait(math.random(3, 15))
end
write('markers', table.concat(typed, '\n'))
if not vim.wait(30000, attached, 10) then
  fail('not attached at the end')
end
while not exists(env.DS_OUT .. '/quit') do
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  write('buf', table.concat(lines, '\n') .. '\n')
  vim.wait(50)
end
vim.cmd('qa!')
