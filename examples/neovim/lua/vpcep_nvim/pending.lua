-- vpcep_nvim.pending: :VpcepPending SERVICE_ID, a scratch buffer listing
-- the service's pending connections, filled when the list arrives. In it:
--   a   accept the connection under the cursor, or those of the selected lines
--   r   reject them the same way
--   R   list again
-- Each line's last column says what became of it: accepting..., then the
-- new status, or "error" and the error's code.
local nvim = require "vpcep_nvim"

local M = {}

local HEADER = 2 -- lines above the first connection
local DESCRIPTION_WIDTH = 40
local DOING = { accept = "accepting...", reject = "rejecting..." }

-- buffer -> { sid, rows = { {id, domain, created, description, status} }, by_id = { id -> row index } }
local state = {}
local buffer_of = {} -- service id -> its buffer

local function set_lines(buf, first, last, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(buf, first, last, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
end

-- One line of text: no line breaks, at most width characters.
local function cell(v, width)
  -- (a JSON null is vim.NIL or cjson.null: no text)
  local s = (type(v) == "string" or type(v) == "number") and tostring(v) or ""
  s = s:gsub("%c", " ")
  if width and vim.fn.strchars(s) > width then s = vim.fn.strcharpart(s, 0, width - 3) .. "..." end
  return s
end

local function pad(s, width)
  return s .. string.rep(" ", width - vim.fn.strdisplaywidth(s))
end

local COLUMNS = { "id", "domain", "created", "description" }

-- The text of every row, columns padded to the widest value.
local function render(st)
  local widths = { #"ID", #"DOMAIN", #"CREATED_AT", #"DESCRIPTION" }
  for _, row in ipairs(st.rows) do
    for k, col in ipairs(COLUMNS) do widths[k] = math.max(widths[k], vim.fn.strdisplaywidth(row[col])) end
  end
  st.widths = widths
  local function line(values)
    local parts = {}
    for k = 1, #COLUMNS do parts[k] = pad(values[k], widths[k]) end
    return table.concat(parts, "  ") .. "  " .. values[#COLUMNS + 1]
  end
  local lines = {
    ("# pending connections of service %s   (a accept, r reject, R refresh)"):format(st.sid),
    line({ "ID", "DOMAIN", "CREATED_AT", "DESCRIPTION", "STATUS" }),
  }
  for _, row in ipairs(st.rows) do
    lines[#lines + 1] = line({ row.id, row.domain, row.created, row.description, row.status })
  end
  st.line = line
  return lines
end

-- Rewrites the line of one row (its status changed).
local function redraw_row(buf, st, i)
  local row = st.rows[i]
  set_lines(buf, HEADER + i - 1, HEADER + i, { st.line({ row.id, row.domain, row.created, row.description,
    row.status }) })
end

local function show(buf, st, message)
  local lines = render(st)
  if message then lines[#lines + 1] = message end
  set_lines(buf, 0, -1, lines)
end

-- Lists the pending connections again.
function M.refresh(buf)
  local st = state[buf]
  if not st then return end
  st.rows, st.by_id = {}, {}
  show(buf, st, "(listing...)")
  local c, err = nvim.client()
  local function fill(list, e)
    if not vim.api.nvim_buf_is_valid(buf) or state[buf] ~= st then return end
    if not list then
      local pe = nvim.plain_error(e)
      show(buf, st, ("error: %s: %s"):format(tostring(pe.code), cell(pe.message)))
      return
    end
    for i, conn in ipairs(list) do
      st.rows[i] = { id = cell(conn.id), domain = cell(conn.domain_id), created = cell(conn.created_at),
                     description = cell(conn.description, DESCRIPTION_WIDTH), status = cell(conn.status) }
      st.by_id[st.rows[i].id] = i
    end
    show(buf, st, #list == 0 and "(no pending connections)" or nil)
  end
  if not c then return vim.schedule(function() fill(nil, err) end) end
  c:connections(st.sid, { status = "pendingAcceptance" }, fill)
end

-- Accepts or rejects the connections on lines l1..l2 (1-based), in one
-- concurrent call; each line shows its outcome when it comes.
function M.act(buf, action, l1, l2)
  local st = state[buf]
  if not st then return end
  local ids, rows = {}, {}
  for lnum = math.min(l1, l2), math.max(l1, l2) do
    local i = lnum - HEADER
    local row = st.rows[i]
    if row and row.status ~= DOING.accept and row.status ~= DOING.reject then
      ids[#ids + 1], rows[#rows + 1] = row.id, i
      row.status = DOING[action]
      redraw_row(buf, st, i)
    end
  end
  if #ids == 0 then
    vim.notify("vpcep: no connection on " .. (l1 == l2 and "this line" or "these lines"), vim.log.levels.WARN)
    return
  end
  nvim.run(action, st.sid, ids, function(out)
    if not vim.api.nvim_buf_is_valid(buf) or state[buf] ~= st then return end
    for _, r in ipairs(out) do
      local i = st.by_id[r.id]
      if i then
        st.rows[i].status = r.error and ("error " .. tostring(r.error.code)) or cell(r.status)
        redraw_row(buf, st, i)
      end
    end
  end)
end

local function visual_range()
  local l1, l2 = vim.fn.line("v"), vim.fn.line(".")
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "n", false)
  return l1, l2
end

local function map(buf)
  local function km(mode, lhs, fn, desc)
    vim.keymap.set(mode, lhs, fn, { buffer = buf, nowait = true, silent = true, desc = desc })
  end
  for lhs, action in pairs({ a = "accept", r = "reject" }) do
    km("n", lhs, function()
      local l = vim.fn.line(".")
      M.act(buf, action, l, l)
    end, "vpcep: " .. action .. " the connection under the cursor")
    km("x", lhs, function()
      local l1, l2 = visual_range()
      M.act(buf, action, l1, l2)
    end, "vpcep: " .. action .. " the selected connections")
  end
  km("n", "R", function() M.refresh(buf) end, "vpcep: list the pending connections again")
end

-- :VpcepPending SID: opens (or shows again) the service's buffer.
function M.open(sid)
  local buf = buffer_of[sid]
  if not (buf and state[buf] and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, "vpcep://pending/" .. sid)
    buffer_of[sid] = buf
    for k, v in pairs({ buftype = "nofile", bufhidden = "hide", swapfile = false, modifiable = false,
                        filetype = "vpcep" }) do
      vim.api.nvim_buf_set_option(buf, k, v)
    end
    state[buf] = { sid = sid, rows = {}, by_id = {} }
    map(buf)
    vim.api.nvim_create_autocmd("BufWipeout", { buffer = buf, once = true, callback = function() state[buf] = nil end })
  end
  vim.api.nvim_win_set_buf(0, buf)
  M.refresh(buf)
  return buf
end

-- The buffer's rows, for tests and other plugins: { {id=, status=, ...} }.
function M.rows(buf)
  return state[buf] and state[buf].rows
end

return M
