-- Latency benchmark participant (sidecar/benches/editor_latency.rs).
-- Role A types DS_N single ASCII chars (one every DS_GAP_MS) and records vim.uv.hrtime() of
-- each keystroke; role B records the hrtime at which each remote char lands in its buffer
-- (an on_bytes listener; the plugin applies remote edits synchronously with nvim_buf_set_text).
-- hrtime is CLOCK_MONOTONIC: one clock for both processes.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
local role = env.DS_ROLE
ds.setup({ name = role, cmd = { env.DS_BIN, 'lsp' } })
local function exists(p)
  return vim.uv.fs_stat(p) ~= nil
end
local function write(p, s)
  local f = assert(io.open(p .. '.tmp', 'wb'))
  f:write(s)
  f:close()
  assert(os.rename(p .. '.tmp', p))
end
vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
assert(vim.wait(20000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5), 'attach')
local n = tonumber(env.DS_N)
local out = env.DS_OUT .. '/' .. role
if role == 'B' then
  local times = {}
  vim.api.nvim_buf_attach(buf, false, {
    on_bytes = function(_, _, _, _, _, _, _, _, _, ner, nec, neb)
      local t = vim.uv.hrtime()
      -- count inserted bytes (ASCII: one char each)
      for _ = 1, neb do
        table.insert(times, t)
      end
    end,
  })
  write(out .. '.ready', '')
  vim.wait(120000, function()
    return #times >= n
  end, 1)
  local lines = {}
  for i = 1, math.min(#times, n) do
    lines[i] = tostring(times[i])
  end
  write(out, table.concat(lines, '\n'))
else
  assert(vim.wait(30000, function()
    return exists(env.DS_OUT .. '/B.ready')
  end, 5), 'B ready')
  local gap = tonumber(env.DS_GAP_MS)
  local times = {}
  for i = 1, n do
    local row = vim.api.nvim_buf_line_count(buf) - 1
    local col = #vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
    times[i] = vim.uv.hrtime()
    vim.api.nvim_buf_set_text(buf, row, col, row, col, { 'x' })
    vim.wait(gap, function()
      return false
    end)
  end
  local lines = {}
  for i = 1, n do
    lines[i] = tostring(times[i])
  end
  write(out, table.concat(lines, '\n'))
end
vim.cmd('qa!')
