-- Remote edits keep the user's cursor on the same text. Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_OUT.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
ds.setup({ name = 'Cora', cmd = { env.DS_BIN, 'lsp' } })
local function out(s)
  local f = io.open(env.DS_OUT .. '/cursor.result', 'w')
  f:write(s)
  f:close()
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
assert(vim.wait(20000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5), 'attach')
-- Cursor on the "o" of "line one" (row 2, byte col 5).
vim.api.nvim_win_set_cursor(0, { 2, 5 })
local f = io.open(env.DS_OUT .. '/cursor.ready', 'w')
f:close()
local ok = vim.wait(20000, function()
  local l = vim.api.nvim_buf_get_lines(buf, 2, 3, false)[1]
  return l == 'XXé line one'
end, 5)
if not ok then
  out('remote edit never arrived: ' .. vim.inspect(vim.api.nvim_buf_get_lines(buf, 0, -1, false)))
else
  local c = vim.api.nvim_win_get_cursor(0)
  local line = vim.api.nvim_buf_get_lines(buf, c[1] - 1, c[1], false)[1]
  out(('%d %d %s'):format(c[1], c[2], line:sub(c[2] + 1, c[2] + 1)))
end
vim.cmd('qa!')
