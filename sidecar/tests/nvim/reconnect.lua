-- Reconnect e2e: type, wait for the test to kill the daemon (DS_OUT/killed), type while
-- disconnected, then wait until the plugin has reconnected (a new daemon is started by
-- `dist-space lsp`) and write "reattached" to DS_OUT/result. Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_OUT.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
ds.setup({ name = 'Rita', cmd = { env.DS_BIN, 'lsp' }, reconnect_min = 50 })
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function fail(msg)
  io.stderr:write('reconnect.lua: ' .. msg .. '\n')
  vim.cmd('cquit 1')
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
vim.api.nvim_buf_set_text(buf, 0, 0, 0, 0, { 'before ' })
local f = io.open(env.DS_OUT .. '/typed', 'w')
f:close()
if not vim.wait(30000, function()
  return exists(env.DS_OUT .. '/killed')
end, 10) then
  fail('never killed')
end
-- The client notices the dead daemon (bridge exits).
if not vim.wait(10000, function()
  return not attached()
end, 5) then
  fail('did not notice the disconnect')
end
vim.api.nvim_buf_set_text(buf, 0, 0, 0, 0, { 'offline ' })
if not vim.wait(30000, attached, 10) then
  fail('did not reconnect')
end
vim.api.nvim_buf_set_text(buf, 0, 0, 0, 0, { 'after ' })
f = io.open(env.DS_OUT .. '/result', 'w')
f:write('reattached')
f:close()
vim.wait(30000, function()
  return exists(env.DS_OUT .. '/stop')
end, 10)
vim.cmd('qa!')
