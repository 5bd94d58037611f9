-- Stale-writer e2e, a stock Neovim without the plugin (sidecar/tests/stale_writers.rs): it
-- opens the file, and much later inserts a line into its (now stale) buffer and saves with
-- `:w!`, overwriting what the daemon wrote meanwhile. Env: DS_FILE, DS_OUT, DS_LINE (0-based),
-- DS_TEXT. Writes DS_OUT/opened, waits for DS_OUT/go, edits and saves, writes DS_OUT/saved.
local env = vim.env
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function write(p, s)
  local f = assert(io.open(p, 'wb'))
  f:write(s)
  f:close()
end
local function fail(msg)
  io.stderr:write('stock_save.lua: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
write(env.DS_OUT .. '/opened', '')
if not vim.wait(120000, function()
  return exists(env.DS_OUT .. '/go')
end, 5) then
  fail('no go')
end
local line = tonumber(env.DS_LINE)
vim.api.nvim_buf_set_lines(0, line, line, false, { env.DS_TEXT })
vim.cmd('write!')
write(env.DS_OUT .. '/saved', '')
vim.cmd('qa!')
