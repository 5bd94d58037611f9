-- Presence e2e: B moves its cursor; A waits until it shows B's cursor extmark and writes
-- "<name> <row> <col>" of it to DS_OUT/A.result. Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_ROLE, DS_OUT.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
local role = env.DS_ROLE
ds.setup({ name = role == 'A' and 'Alice' or 'Bob', cmd = { env.DS_BIN, 'lsp' } })
local function fail(msg)
  io.stderr:write('presence.lua [' .. role .. ']: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
if not vim.wait(20000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5) then
  fail('did not attach')
end
local done = env.DS_OUT .. '/A.result'
if role == 'B' then
  -- Move until A reports (A may connect after our first move; presence is replayed to
  -- newcomers, but keep moving to exercise updates).
  local moves = { { 1, 3 }, { 2, 0 }, { 3, 14 } }
  for _, m in ipairs(moves) do
    vim.api.nvim_win_set_cursor(0, m)
    vim.api.nvim_exec_autocmds('CursorMoved', { buffer = buf })
    vim.wait(100, function()
      return false
    end)
  end
  if not vim.wait(30000, function()
    return exists(done)
  end, 20) then
    fail('A never reported')
  end
  vim.cmd('qa!')
else
  local ns = vim.api.nvim_get_namespaces()['dist-space-peers']
  local found
  local ok = vim.wait(30000, function()
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
      local d = m[4]
      if d.virt_text and d.virt_text[1][1]:match('Bob') and m[2] == 2 and m[3] == 14 then
        found = ('Bob %d %d'):format(m[2], m[3])
        return true
      end
    end
    return false
  end, 10)
  if not ok then
    local marks = vim.inspect(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true }))
    local f = io.open(done, 'w')
    f:write('none ' .. marks)
    f:close()
    vim.cmd('qa!')
    return
  end
  -- :DistSpaceJump puts our cursor on B's; :DistSpaceInfo lists both participants.
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.cmd('DistSpaceJump Bo')
  local c = vim.api.nvim_win_get_cursor(0)
  local info = ds.info()
  local extra = ''
  if c[1] ~= 3 or c[2] ~= 14 then
    extra = extra .. ' jump-failed:' .. c[1] .. ',' .. c[2]
  end
  if not info:find('Alice %(you%)') or not info:find('Bob') then
    extra = extra .. ' info-failed:' .. info
  end
  local f = io.open(done, 'w')
  f:write(found .. extra)
  f:close()
  vim.cmd('qa!')
end
