-- Stock Neovim, no plugin: `dist-space lsp` as a plain language server (started in the
-- workspace folder). Types markers "<S1>", "<S2>"... at the start of random lines every few ms,
-- whether the daemon is up or not (it is killed with -9), until DS_OUT/stop exists; then writes
-- the markers typed to DS_OUT/markers and keeps reporting "attached"/"detached" and the buffer
-- to DS_OUT/buf until DS_OUT/quit exists.
-- Env: DS_BIN, DS_FILE, DS_OUT, DS_SEED.
local env = vim.env
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function fail(msg)
  io.stderr:write('stock_crash.lua: ' .. msg .. '\n')
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
local id = vim.lsp.start({ name = 'dist-space', cmd = { env.DS_BIN, 'lsp' }, root_dir = vim.fn.getcwd() })
if not id then
  fail('vim.lsp.start failed')
end
local function attached()
  local c = vim.lsp.get_client_by_id(id)
  return c ~= nil and not c:is_stopped() and c.initialized and vim.lsp.buf_is_attached(buf, id)
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
  local m = '<S' .. i .. '>'
  local n = vim.api.nvim_buf_line_count(buf)
  local row = math.random(0, n - 1)
  vim.api.nvim_buf_set_text(buf, row, 0, row, 0, { m })
  typed[#typed + 1] = m
  vim.wait(math.random(3, 15))
end
write('markers', table.concat(typed, '\n'))
while not exists(env.DS_OUT .. '/quit') do
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  write('buf', (attached() and 'attached\n' or 'detached\n') .. table.concat(lines, '\n') .. '\n')
  vim.wait(50)
end
vim.cmd('qa!')
