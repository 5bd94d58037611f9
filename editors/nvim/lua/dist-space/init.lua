-- dist-space for Neovim (>= 0.10): live multi-editor / multi-agent editing through the
-- workspace's dist-space daemon.
--
-- Protocol (see sidecar/src/proto.rs): the plugin tracks buffer changes itself (on_bytes) and
-- sends them as `dist-space/change {uri, seen, changes}`; the server registers no standard
-- didChange for us. Remote edits arrive as `dist-space/edit {uri, rev, editorRev, edits}` and
-- are applied with nvim_buf_set_text only if `editorRev` equals the number of changes we sent
-- (otherwise they are stale and dropped: the daemon re-sends them transformed). Our own
-- application of a remote edit is not reported back (the `applying` flag), and the cursor is
-- kept in place with an extmark.
--
-- Reopening (see sidecar/src/reopen.rs): the daemon's wire version (agent -> seq) of our buffer
-- after each edit notice is sent as changes (`baseDelta`, merged into `st.wire` whether the edit
-- is applied or dropped; `dist-space/resync` carries it whole as `base`); we keep the one of
-- the last notice applied per buffer (`st.base`) and the engine agents our connections had (`st.agents`, from the initialize
-- result's `capabilities.experimental.distSpace.agent`, the last 16). Each new connection sends them as `initializationOptions.reopen[uri]`, so
-- after a reconnect (a daemon restart included) the daemon merges the buffer as our edit made
-- at exactly that version: an edit we never received is not mistaken for our deletion.
--
-- Buffer model: the buffer text is exactly the lines joined with "\n" ('noeol', 'nofixeol'):
-- a file ending in a newline shows one extra empty last line, so every position the daemon
-- sends exists in the buffer.
local M = {}

local api = vim.api
local ns_peer = api.nvim_create_namespace('dist-space-peers')
local ns_keep = api.nvim_create_namespace('dist-space-keep')

local config = {
  name = nil,
  cmd = nil,
  -- connect straight to the daemon's socket when it runs (else through `cmd`)
  direct = true,
  -- reconnect backoff (ms)
  reconnect_min = 200,
  reconnect_max = 5000,
  -- a connection not attached after this long is dropped and retried (ms)
  connect_timeout = 3000,
}

-- bufnr -> { uri, root, client_id, opened, sent, seen, applying, wire, base, agents }
local bufs = {}
-- peer id -> { id, name, uri, cursors }
local peers = {}
local follow = nil
local leaving = false
local reconnect_delay = {}

local function notify_client(client, method, params)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function request_sync(client, method, params, timeout)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request_sync(method, params, timeout)
  end
  return client.request_sync(method, params, timeout)
end

local function request_async(client, method, params, handler)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler)
  end
  return client.request(method, params, handler)
end

local MAX_AGENTS = 16

-- The engine agent of a connection: remembered for every buffer of its root.
local function remember_agent(root, agent)
  if type(agent) ~= 'string' then
    return
  end
  for _, st in pairs(bufs) do
    if st.root == root then
      st.agents = st.agents or {}
      if st.agents[#st.agents] ~= agent then
        table.insert(st.agents, agent)
        while #st.agents > MAX_AGENTS do
          table.remove(st.agents, 1)
        end
      end
    end
  end
end

-- `initializationOptions.reopen` for a new connection to `root`.
local function reopen_hints(root)
  local out = {}
  for _, st in pairs(bufs) do
    if st.root == root and type(st.base) == 'table' and next(st.base) ~= nil then
      out[st.uri] = { base = st.base, agents = st.agents or {} }
    end
  end
  if next(out) == nil then
    return nil
  end
  return out
end

-- Merge a notice's `baseDelta` into the connection's running wire version of the buffer.
local function merge_wire(st, delta)
  st.wire = st.wire or {}
  if type(delta) == 'table' then
    for k, v in pairs(delta) do
      if type(k) == 'string' and type(v) == 'number' then
        st.wire[k] = v
      end
    end
  end
end

local function snapshot_wire(st)
  local b = {}
  for k, v in pairs(st.wire or {}) do
    b[k] = v
  end
  return b
end

local function log(msg, level)
  vim.notify('[dist-space] ' .. msg, level or vim.log.levels.INFO)
end

--- The dist-space workspace root of a path: nearest ancestor with a `.dist-space` folder.
function M.root_of(path)
  if path == nil or path == '' then
    return nil
  end
  local found = vim.fs.find('.dist-space', { upward = true, path = vim.fs.dirname(path), type = 'directory' })[1]
  if found then
    return vim.fs.dirname(found)
  end
  return nil
end

local function buf_text(buf)
  return table.concat(api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

-- Make the buffer text equal the file bytes with every position addressable (see top).
local function prepare(buf)
  local bo = vim.bo[buf]
  bo.fixeol = false
  if bo.eol then
    local name = api.nvim_buf_get_name(buf)
    local empty_file = api.nvim_buf_line_count(buf) == 1
      and api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ''
      and (vim.fn.getfsize(name) <= 0)
    local was_modified = bo.modified
    if not empty_file then
      api.nvim_buf_set_lines(buf, -1, -1, false, { '' })
    end
    bo.eol = false
    bo.modified = was_modified
  end
end

local function client_of(st)
  return st.client_id and vim.lsp.get_client_by_id(st.client_id) or nil
end

local function on_bytes(_, buf, _, sr, sc, _, oer, oec, _, ner, nec, _)
  local st = bufs[buf]
  if not st then
    return true -- detach
  end
  if st.applying or not st.opened then
    return
  end
  local client = client_of(st)
  if not client then
    return
  end
  local n = api.nvim_buf_line_count(buf)
  local old_n = n - ner + oer
  local change
  if sr + oer >= old_n or sr + ner >= n then
    -- Touches the position after the last line (Neovim's model has a newline there, ours
    -- does not): send the whole text, the daemon diffs it.
    change = { text = buf_text(buf) }
  else
    local er, ec = sr + ner, (ner == 0) and (sc + nec) or nec
    local text = table.concat(api.nvim_buf_get_text(buf, sr, sc, er, ec, {}), '\n')
    local oer_abs, oec_abs = sr + oer, (oer == 0) and (sc + oec) or oec
    change = {
      range = { start = { line = sr, character = sc }, ['end'] = { line = oer_abs, character = oec_abs } },
      text = text,
    }
  end
  st.sent = st.sent + 1
  notify_client(client, 'dist-space/change', { uri = st.uri, seen = st.seen, changes = { change } })
end

local function buf_by_uri(uri)
  for b, st in pairs(bufs) do
    if st.uri == uri and api.nvim_buf_is_valid(b) then
      return b, st
    end
  end
end

local function with_kept_cursors(buf, fn)
  local marks = {}
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    local c = api.nvim_win_get_cursor(win)
    local ok, id = pcall(api.nvim_buf_set_extmark, buf, ns_keep, c[1] - 1, c[2], { right_gravity = false, strict = false })
    if ok then
      marks[win] = id
    end
  end
  local ok, err = pcall(fn)
  for win, id in pairs(marks) do
    local p = api.nvim_buf_get_extmark_by_id(buf, ns_keep, id, {})
    if p and p[1] and api.nvim_win_is_valid(win) then
      pcall(api.nvim_win_set_cursor, win, { p[1] + 1, p[2] })
    end
    pcall(api.nvim_buf_del_extmark, buf, ns_keep, id)
  end
  return ok, err
end

local function handle_edit(_, params)
  local buf, st = buf_by_uri(params.uri)
  if not buf then
    return
  end
  merge_wire(st, params.baseDelta)
  if params.editorRev ~= st.sent then
    return -- stale: based on fewer of our changes than we sent; the daemon re-sends it
  end
  st.applying = true
  local ok, err = with_kept_cursors(buf, function()
    for _, e in ipairs(params.edits) do
      local s, en = e.range.start, e.range['end']
      api.nvim_buf_set_text(buf, s.line, s.character, en.line, en.character, vim.split(e.text, '\n', { plain = true }))
    end
  end)
  st.applying = false
  st.seen = params.rev
  if ok then
    st.base = snapshot_wire(st)
  else
    st.base = nil -- the buffer may hold part of it
    log('could not apply a remote edit: ' .. tostring(err) .. ' (reconnecting)', vim.log.levels.ERROR)
    local client = client_of(st)
    if client then
      client:stop()
    end
  end
end

local function handle_resync(_, params)
  local buf, st = buf_by_uri(params.uri)
  if not buf then
    return
  end
  st.applying = true
  with_kept_cursors(buf, function()
    api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(params.text, '\n', { plain = true }))
  end)
  st.applying = false
  st.sent, st.seen = 0, 0
  st.wire = {}
  merge_wire(st, params.base)
  st.base = snapshot_wire(st)
end

local function draw_peer(p)
  -- extmark ids encode the peer: id*16 + k
  for b, _ in pairs(bufs) do
    if api.nvim_buf_is_valid(b) then
      for k = 1, 15 do
        pcall(api.nvim_buf_del_extmark, b, ns_peer, p.id * 16 + k)
      end
    end
  end
  if not p.uri then
    return
  end
  local buf = buf_by_uri(p.uri)
  if not buf then
    return
  end
  for k, c in ipairs(p.cursors or {}) do
    if k > 7 then
      break
    end
    local a, h = c.anchor, c.head
    local base = p.id * 16 + (k - 1) * 2
    pcall(api.nvim_buf_set_extmark, buf, ns_peer, h.line, h.character, {
      id = base + 1,
      end_col = h.character + 1,
      hl_group = 'DistSpaceCursor',
      virt_text = { { ' ' .. p.name .. ' ', 'DistSpaceName' } },
      virt_text_pos = 'eol',
      strict = false,
    })
    if a.line ~= h.line or a.character ~= h.character then
      local s, e = a, h
      if e.line < s.line or (e.line == s.line and e.character < s.character) then
        s, e = h, a
      end
      pcall(api.nvim_buf_set_extmark, buf, ns_peer, s.line, s.character, {
        id = base + 2,
        end_row = e.line,
        end_col = e.character,
        hl_group = 'DistSpaceSelection',
        strict = false,
      })
    end
  end
end

local function jump_to(p)
  if not p or not p.uri or not p.cursors or not p.cursors[1] then
    return false
  end
  local buf = buf_by_uri(p.uri)
  if not buf then
    vim.cmd.edit(vim.fn.fnameescape(vim.uri_to_fname(p.uri)))
    buf = api.nvim_get_current_buf()
  elseif buf ~= api.nvim_get_current_buf() then
    api.nvim_set_current_buf(buf)
  end
  local h = p.cursors[1].head
  pcall(api.nvim_win_set_cursor, 0, { h.line + 1, h.character })
  return true
end

local function handle_presence(_, params)
  local p = peers[params.id] or {}
  p.id, p.name, p.uri, p.cursors = params.id, params.name, params.uri, params.cursors
  if params.uri == vim.NIL or params.uri == nil then
    p.uri = nil
  end
  peers[params.id] = p
  draw_peer(p)
  if follow and p.name == follow then
    jump_to(p)
  end
end

local function send_cursor(buf)
  local st = bufs[buf]
  if not st or not st.opened or st.applying then
    return
  end
  local client = client_of(st)
  if not client or api.nvim_get_current_buf() ~= buf then
    return
  end
  local c = api.nvim_win_get_cursor(0)
  local head = { line = c[1] - 1, character = c[2] }
  local anchor = head
  local mode = api.nvim_get_mode().mode
  if mode:match('^[vV\22]') then
    local v = vim.fn.getpos('v')
    anchor = { line = v[2] - 1, character = math.max(v[3] - 1, 0) }
  end
  notify_client(client, 'dist-space/cursor', { uri = st.uri, cursors = { { anchor = anchor, head = head } } })
end

local attach -- forward

local function on_exit(root)
  return vim.schedule_wrap(function()
    for _, st in pairs(bufs) do
      if st.root == root then
        st.opened, st.client_id = false, nil
      end
    end
    for id, p in pairs(peers) do
      p.uri = nil
      draw_peer(p)
      peers[id] = nil
    end
    if leaving then
      return
    end
    local d = reconnect_delay[root] or config.reconnect_min
    reconnect_delay[root] = math.min(d * 2, config.reconnect_max)
    vim.defer_fn(function()
      if leaving then
        return
      end
      for b, st in pairs(bufs) do
        if st.root == root and api.nvim_buf_is_valid(b) and not st.client_id then
          attach(b)
        end
      end
    end, d)
  end)
end

-- roots whose last direct socket connection failed: use the bridge (it starts the daemon)
local direct_failed = {}

local function running_socket(root)
  local ok, lines = pcall(vim.fn.readfile, root .. '/.dist-space/daemon.json')
  if not ok or not lines or #lines == 0 then
    return nil
  end
  local ok2, info = pcall(vim.json.decode, table.concat(lines, '\n'))
  if not ok2 or type(info) ~= 'table' or type(info.socket) ~= 'string' then
    return nil
  end
  if not vim.uv.fs_stat(info.socket) then
    return nil
  end
  -- A daemon killed with -9 leaves daemon.json and its socket file behind: connecting to
  -- that socket is refused, and Neovim's socket transport never reports a refused connect.
  if type(info.pid) ~= 'number' or vim.uv.kill(info.pid, 0) ~= 0 then
    return nil
  end
  return info.socket
end

-- How to reach the daemon: straight to its Unix socket when it is running (one process hop
-- less each way), else `dist-space lsp --root ROOT`, which starts it.
local function cmd_for(root)
  if config.direct ~= false and not direct_failed[root] and vim.lsp.rpc.connect then
    local sock = running_socket(root)
    if sock then
      return vim.lsp.rpc.connect(sock), true
    end
  end
  local cmd = vim.deepcopy(config.cmd or { 'dist-space', 'lsp' })
  table.insert(cmd, '--root')
  table.insert(cmd, root)
  return cmd, false
end

--- Attach the dist-space client to `buf` if it is inside a dist-space workspace.
attach = function(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  if not api.nvim_buf_is_valid(buf) or vim.bo[buf].buftype ~= '' then
    return
  end
  local name = api.nvim_buf_get_name(buf)
  local root = M.root_of(name)
  if not root then
    return
  end
  local st = bufs[buf]
  if not st then
    prepare(buf)
    st = { uri = vim.uri_from_bufnr(buf), root = root, sent = 0, seen = 0, opened = false, applying = false }
    bufs[buf] = st
    api.nvim_buf_attach(buf, false, {
      on_bytes = on_bytes,
      on_detach = function()
        bufs[buf] = nil
      end,
    })
    local grp = api.nvim_create_augroup('dist-space-buf-' .. buf, { clear = true })
    api.nvim_create_autocmd({ 'CursorMoved', 'CursorMovedI', 'ModeChanged' }, {
      group = grp,
      buffer = buf,
      callback = function()
        send_cursor(buf)
      end,
    })
    -- The daemon owns write-back: `:w` asks it to flush instead of writing from the buffer.
    api.nvim_create_autocmd('BufWriteCmd', {
      group = grp,
      buffer = buf,
      callback = function(ev)
        local s = bufs[buf]
        local client = s and client_of(s)
        local target = vim.fn.fnamemodify(ev.file, ':p')
        if client and s.opened and target == vim.fn.fnamemodify(name, ':p') then
          request_sync(client, 'dist-space/save', { uri = s.uri }, 3000)
          vim.bo[buf].modified = false
        else
          vim.cmd('noautocmd write! ' .. vim.fn.fnameescape(target))
        end
      end,
    })
    -- The daemon writes the file; never prompt about it.
    api.nvim_create_autocmd('FileChangedShell', {
      group = grp,
      buffer = buf,
      callback = function()
        vim.v.fcs_choice = ''
      end,
    })
  end
  local cmd, direct = cmd_for(root)
  local client_id
  client_id = vim.lsp.start({
    name = 'dist-space',
    cmd = cmd,
    root_dir = root,
    init_options = { name = config.name, revisionProtocol = true, reopen = reopen_hints(root) },
    capabilities = vim.tbl_deep_extend('force', vim.lsp.protocol.make_client_capabilities(), {
      general = { positionEncodings = { 'utf-8' } },
    }),
    offset_encoding = 'utf-8',
    handlers = {
      ['dist-space/edit'] = handle_edit,
      ['dist-space/presence'] = handle_presence,
      ['dist-space/resync'] = handle_resync,
    },
    on_attach = function(client, b)
      local s = bufs[b]
      if s then
        s.opened, s.sent, s.seen, s.wire = true, 0, 0, {}
        reconnect_delay[s.root] = nil
        direct_failed[s.root] = nil
        send_cursor(b)
        -- This connection's engine agent: its changes are in our buffer (see top). The
        -- initialize result carries it (known before any change of ours); older daemons
        -- only answer it in `dist-space/info`.
        local caps = client.server_capabilities or {}
        local ds = type(caps.experimental) == 'table' and caps.experimental.distSpace or nil
        if type(ds) == 'table' and type(ds.agent) == 'string' then
          remember_agent(s.root, ds.agent)
        else
          request_async(client, 'dist-space/info', {}, function(err, res)
            if not err and type(res) == 'table' then
              remember_agent(s.root, res.agent)
            end
          end)
        end
      end
    end,
    -- A read error (ECONNRESET: the daemon was killed with our bytes unread) is only reported
    -- by Neovim, the transport is not closed and on_exit never runs: the client would look
    -- attached while nothing reaches a daemon. Close it; its exit reconnects.
    on_error = function(code)
      if code == vim.lsp.rpc.client_errors.READ_ERROR then
        vim.schedule(function()
          local client = client_id and vim.lsp.get_client_by_id(client_id)
          if client then
            client:stop(true)
          end
        end)
      end
    end,
    on_exit = function(...)
      if direct then
        direct_failed[root] = true
      end
      on_exit(root)(...)
    end,
  }, { bufnr = buf })
  st.client_id = client_id
  -- Neovim's socket transport (vim.lsp.rpc.connect) only warns when the connect fails (the
  -- daemon died between reading daemon.json and connecting): the client would wait forever,
  -- never exit, and this buffer would never reach the daemon again. Drop any connection that
  -- did not attach in time; its exit reconnects (through the bridge, which starts a daemon).
  if client_id then
    vim.defer_fn(function()
      local s = bufs[buf]
      if s and s.client_id == client_id and not s.opened then
        local client = vim.lsp.get_client_by_id(client_id)
        if client then
          client:stop(true)
        end
      end
    end, config.connect_timeout)
  end
end

M.attach = attach

--- Participants known to this editor.
function M.peers()
  return peers
end

--- Buffer state (for tests and :DistSpaceInfo).
function M.buffers()
  return bufs
end

function M.info()
  local lines = {}
  local st = bufs[api.nvim_get_current_buf()]
  if not st then
    return 'dist-space: this buffer is not in a dist-space workspace'
  end
  local client = client_of(st)
  table.insert(lines, ('root: %s'):format(st.root))
  table.insert(lines, ('connection: %s (client %s), sent %d changes, applied up to rev %d'):format(
    client and (st.opened and 'attached' or 'starting') or 'disconnected', tostring(st.client_id), st.sent, st.seen))
  if client then
    local res = request_sync(client, 'dist-space/info', {}, 2000)
    if res and res.result then
      local r = res.result
      table.insert(lines, ('daemon pid %s, socket %s'):format(tostring(r.pid), tostring(r.socket)))
      table.insert(lines, 'participants:')
      for _, p in ipairs(r.participants or {}) do
        table.insert(lines, ('  %s%s  %s'):format(p.name, p.id == r.me and ' (you)' or '', p.file ~= vim.NIL and (p.file or '') or ''))
      end
    end
  end
  return table.concat(lines, '\n')
end

local function find_peer(name)
  for _, p in pairs(peers) do
    if p.name == name then
      return p
    end
  end
  for _, p in pairs(peers) do
    if p.name:sub(1, #name) == name then
      return p
    end
  end
end

function M.jump(name)
  local p = find_peer(name)
  if not jump_to(p) then
    log('no participant with a cursor named ' .. name, vim.log.levels.WARN)
  end
end

function M.follow(name)
  if name == nil or name == '' then
    follow = nil
    log('not following anyone')
    return
  end
  local p = find_peer(name)
  follow = p and p.name or name
  if p then
    jump_to(p)
  end
end

function M.setup(opts)
  config = vim.tbl_extend('force', config, opts or {})
  config.name = config.name or vim.env.USER or 'nvim'
  api.nvim_set_hl(0, 'DistSpaceCursor', { default = true, reverse = true })
  api.nvim_set_hl(0, 'DistSpaceName', { default = true, link = 'Search' })
  api.nvim_set_hl(0, 'DistSpaceSelection', { default = true, link = 'Visual' })
  local grp = api.nvim_create_augroup('dist-space', { clear = true })
  api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
    group = grp,
    callback = function(ev)
      attach(ev.buf)
    end,
  })
  api.nvim_create_autocmd('VimLeavePre', {
    group = grp,
    callback = function()
      leaving = true
    end,
  })
  api.nvim_create_user_command('DistSpaceInfo', function()
    print(M.info())
  end, {})
  local function names()
    local out = {}
    for _, p in pairs(peers) do
      table.insert(out, p.name)
    end
    return out
  end
  api.nvim_create_user_command('DistSpaceJump', function(a)
    M.jump(a.args)
  end, { nargs = 1, complete = names })
  api.nvim_create_user_command('DistSpaceFollow', function(a)
    M.follow(a.args)
  end, { nargs = '?', complete = names })
  for _, b in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(b) then
      attach(b)
    end
  end
end

return M
