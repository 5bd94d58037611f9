-- Headless Neovim participant for the concurrency fuzz (sidecar/tests/nvim_e2e.rs).
-- Env: DS_PLUGIN, DS_BIN, DS_FILE, DS_NAME, DS_SEED, DS_N, DS_OUT, DS_GO, DS_STOP.
-- Writes DS_OUT.ready once attached, waits for DS_GO, makes DS_N random edits with
-- nvim_buf_set_text (as typing would), writes DS_OUT.markers and DS_OUT.done, then keeps
-- writing the buffer text to DS_OUT until DS_STOP exists.
local env = vim.env
vim.opt.rtp:prepend(env.DS_PLUGIN)
local ds = require('dist-space')
ds.setup({ name = env.DS_NAME, cmd = { env.DS_BIN, 'lsp' } })

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
  io.stderr:write('fuzz.lua [' .. env.DS_NAME .. ']: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end

vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()
local ok = vim.wait(20000, function()
  local st = ds.buffers()[buf]
  return st ~= nil and st.opened
end, 5)
if not ok then
  fail('did not attach')
end
write(env.DS_OUT .. '.ready', '')
if not vim.wait(60000, function()
  return exists(env.DS_GO)
end, 2) then
  fail('no go')
end

local function text()
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

-- Byte offset -> (row, col) in `s`.
local function rowcol(s, b)
  local row, last = 0, 0
  local i = 1
  while true do
    local j = s:find('\n', i, true)
    if not j or j > b then
      break
    end
    row = row + 1
    last = j
    i = j + 1
  end
  return row, b - last
end

local function is_cont(s, b) -- byte at offset b (0-based) is a UTF-8 continuation byte
  local c = s:byte(b + 1)
  return c ~= nil and c >= 0x80 and c < 0xC0
end
local function snap(s, b)
  while b > 0 and is_cont(s, b) do
    b = b - 1
  end
  return b
end

local function markers(s)
  local spans = {}
  local i = 1
  while true do
    local a, e = s:find('<%w+:%d+>', i)
    if not a then
      break
    end
    table.insert(spans, { a - 1, e }) -- [start, end) bytes
    i = e + 1
  end
  return spans
end

local pool = { 'a', 'b', 'é', '😀', '\n', 'xy', 'ü\n', ' ', '日本' }
local seed = tonumber(env.DS_SEED)
math.randomseed(seed)
local mine = {}
local n = tonumber(env.DS_N)
for i = 1, n do
  local s = text()
  local spans = markers(s)
  local function inside(b)
    for _, sp in ipairs(spans) do
      if b > sp[1] and b < sp[2] then
        return sp
      end
    end
  end
  local r = math.random()
  local len = #s
  if r < 0.3 and len > 0 then
    -- delete 1..6 bytes' worth of chars that contain no marker char
    for _ = 1, 5 do
      local a = snap(s, math.random(0, len - 1))
      local e = a
      local k = math.random(1, 4)
      for _ = 1, k do
        if e >= len then
          break
        end
        e = e + 1
        while e < len and is_cont(s, e) do
          e = e + 1
        end
      end
      local clash = false
      for _, sp in ipairs(spans) do
        if a < sp[2] and e > sp[1] then
          clash = true
          break
        end
      end
      if not clash and e > a then
        local sr, sc = rowcol(s, a)
        local er, ec = rowcol(s, e)
        vim.api.nvim_buf_set_text(buf, sr, sc, er, ec, { '' })
        break
      end
    end
  else
    local b
    if r < 0.45 then
      b = 0 -- the same spot for everyone
    else
      b = snap(s, math.random(0, len))
    end
    local sp = inside(b)
    if sp then
      b = sp[1]
    end
    local ins
    if r > 0.8 then
      ins = '<' .. env.DS_NAME .. ':' .. i .. '>'
      table.insert(mine, ins)
    else
      ins = pool[math.random(#pool)]
    end
    local sr, sc = rowcol(s, b)
    vim.api.nvim_buf_set_text(buf, sr, sc, sr, sc, vim.split(ins, '\n', { plain = true }))
  end
  -- let the event loop deliver remote edits between keystrokes (0-2 ms)
  vim.wait(math.random(0, 2), function()
    return false
  end)
end
write(env.DS_OUT .. '.markers', table.concat(mine, '\n'))
write(env.DS_OUT .. '.done', '')
local last = nil
while not exists(env.DS_STOP) do
  local t = text()
  if t ~= last then
    write(env.DS_OUT, t)
    last = t
  end
  vim.wait(20, function()
    return false
  end)
end
write(env.DS_OUT, text())
vim.cmd('qa!')
