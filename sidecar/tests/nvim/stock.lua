-- Stock Neovim (no plugin): the built-in LSP client started with `vim.lsp.start` as the README
-- says, for sidecar/tests/stock_clients.rs.
-- Env: DS_BIN, DS_FILE, DS_NAME, DS_SEED, DS_N, DS_SAVE_AT, DS_OUT, DS_GO, DS_STOP.
-- Writes DS_OUT.ready once attached, waits for DS_GO, makes DS_N random edits with
-- nvim_buf_set_text in bursts with pauses (as typing would), `:w` after edit DS_SAVE_AT, writes
-- DS_OUT.markers and DS_OUT.done, then keeps writing the buffer text (as the client sends it:
-- lines, and a final newline if 'eol') to DS_OUT until DS_STOP exists.
local env = vim.env

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
  io.stderr:write('stock.lua [' .. env.DS_NAME .. ']: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end

vim.cmd.edit(vim.fn.fnameescape(env.DS_FILE))
local buf = vim.api.nvim_get_current_buf()

-- The README's configuration, verbatim except for the binary's path.
vim.lsp.start({
  name = 'dist-space',
  cmd = { env.DS_BIN, 'lsp' },
  root_dir = vim.fs.dirname(vim.api.nvim_buf_get_name(buf)),
  on_attach = function(_, b)
    -- dist-space writes the file itself: `:w` asks it to, so Neovim never asks whether to
    -- overwrite a file that changed since it read it.
    vim.api.nvim_create_autocmd('BufWriteCmd', {
      buffer = b,
      callback = function()
        vim.lsp.buf_request_sync(b, 'dist-space/save', {}, 5000)
        vim.bo[b].modified = false
      end,
    })
    vim.api.nvim_create_autocmd('FileChangedShell', { buffer = b, callback = function() end })
  end,
})

local ok = vim.wait(20000, function()
  local c = vim.lsp.get_clients({ bufnr = buf })[1]
  return c ~= nil and c.initialized == true
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
  return vim.lsp._buf_get_full_text(buf)
end

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
local function is_cont(s, b)
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
    table.insert(spans, { a - 1, e })
    i = e + 1
  end
  return spans
end

-- Positions inside the buffer's lines (the final newline of an 'eol' buffer is not a line).
local function lines_text()
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

local pool = { 'a', 'b', 'é', '😀', '\n', 'xy', 'ü\n', ' ', '日本' }
math.randomseed(tonumber(env.DS_SEED))
local mine = {}
local n = tonumber(env.DS_N)
local save_at = tonumber(env.DS_SAVE_AT or '-1')
local burst = 0
for i = 1, n do
  local s = lines_text()
  local spans = markers(s)
  local r = math.random()
  local len = #s
  if r < 0.25 and len > 0 then
    for _ = 1, 5 do
      local a = snap(s, math.random(0, len - 1))
      local e = a
      for _ = 1, math.random(1, 4) do
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
    local b = r < 0.4 and 0 or snap(s, math.random(0, len))
    for _, sp in ipairs(spans) do
      if b > sp[1] and b < sp[2] then
        b = sp[1]
      end
    end
    local ins
    if r > 0.75 then
      ins = '<' .. env.DS_NAME .. ':' .. i .. '>'
      table.insert(mine, ins)
    else
      ins = pool[math.random(#pool)]
    end
    local sr, sc = rowcol(s, b)
    vim.api.nvim_buf_set_text(buf, sr, sc, sr, sc, vim.split(ins, '\n', { plain = true }))
  end
  if i == save_at then
    vim.cmd('write')
    if vim.bo[buf].modified then
      fail(':w left the buffer modified')
    end
    local f = assert(io.open(env.DS_FILE, 'rb'))
    write(env.DS_OUT .. '.saved', f:read('*a'))
    f:close()
  end
  -- Typing in bursts: 0-3 ms between keys, then a pause (remote edits arrive in pauses and
  -- between keys, so echoes come alone and bundled with typing).
  burst = burst - 1
  local pause = math.random(0, 3)
  if burst <= 0 then
    burst = math.random(3, 25)
    pause = math.random(50, 600)
  end
  vim.wait(pause, function()
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
