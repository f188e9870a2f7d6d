-- wrk script for scripts/bench.sh. Environment:
--   SCENARIO  get_user | filter_user_name | list_first | list_page | put_user | patch_user |
--             member_big | member_small | create_user | bulk_create | floor | floor_statement |
--             floor_write
--   BULK_OPS  operations per Bulk request (bulk_create; default 1000)
--   TOKEN     organization API key;  DATA  bench_seed's output directory
--   THREADS, CONNECTIONS  wrk's -t and -c
-- Every thread loads the seeded ids once and picks one at random per request. URLs are
-- literal paths on the host given on wrk's command line (http://127.0.0.1:PORT).
local scenario = os.getenv("SCENARIO")
local token = os.getenv("TOKEN")
local data = os.getenv("DATA")

local thread_count = 0

-- Runs in the main state once per thread before init: number the threads so that the member
-- scenarios give each thread its own slice of outsiders.
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
end

-- The seeded users as one string, read whole: bench_seed writes every line of users.txt the
-- same width (a 36-character id, a space, a zero-padded userName), so user k is found by
-- its place, with no table. Each thread used to build tables of every id and name (and
-- every filter's encoded path) in its init, and wrk starts the first thread's load while it
-- runs the next thread's init, but starts its clock only after: at 1,000,000 users those
-- seconds of the first thread's requests were counted as if made within the run (GET by id
-- about a sixth faster than at 100,000 users, by hand, 2026-12-07).
local users, width, count, name_width
local outsiders = {}
local group
local queue, head, tail, next_outsider, conns_per_thread = {}, 1, 0, 1, 1
local my_index, my_threads

local function lines(file)
  local out = {}
  for line in io.lines(data .. "/" .. file) do out[#out + 1] = line end
  return out
end

-- Percent-encoding by table: gsub looks each byte up in C, where a function per byte (and
-- string.format in it) cost the load generator, which shares the two cores with the server
-- and Postgres, about 5 us of CPU per filter.
local PERCENT = {}
for byte = 0, 255 do PERCENT[string.char(byte)] = string.format("%%%02X", byte) end
local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", PERCENT))
end
local FILTER_PREFIX = "/scim/v2/Users?filter=" .. urlencode('userName eq "')
local FILTER_SUFFIX = urlencode('"')

function init(args)
  my_index = thread_index or 1
  my_threads = tonumber(os.getenv("THREADS") or "2")
  conns_per_thread = math.max(1, math.floor(tonumber(os.getenv("CONNECTIONS") or "16") / my_threads))
  local file = assert(io.open(data .. "/users.txt", "rb"))
  users = file:read("*a")
  file:close()
  width = (users:find("\n", 1, true) or 0)
  count = width > 0 and math.floor(#users / width) or 0
  if width < 39 or count * width ~= #users then
    error("users.txt: expected lines of one width (bench_seed's), got " .. #users .. " bytes")
  end
  -- `<id> <userName> <encoded userName>`; an older bench_seed (the A/B phase's) wrote no
  -- encoded name, which is then encoded per request.
  local second = users:find(" ", 38, true)
  if second and second < width then name_width = second - 38 else name_width = width - 38 end
  if scenario == "member_big" or scenario == "member_small" then
    group = lines(scenario == "member_big" and "big_group.txt" or "small_group.txt")[1]
    -- This thread's slice of the users in neither group: no two threads touch the same user.
    local all = lines("outsiders.txt")
    for i = my_index, #all, my_threads do outsiders[#outsiders + 1] = all[i] end
  end
  math.randomseed(os.time() * 1000 + my_index)
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Accept"] = "application/scim+json"
end

local function pick() return math.random(count) end
-- User k's id and userName.
local function id_of(k) return users:sub((k - 1) * width + 1, (k - 1) * width + 36) end
local function name_of(k) return users:sub((k - 1) * width + 38, (k - 1) * width + 37 + name_width) end
-- User k's userName as a filter's value: bench_seed's encoding, or this script's. Encoding
-- per request was a `gsub`, which LuaJIT does not compile: about 3 us more of wrk's CPU per
-- filter than per GET, on the cores the server and Postgres share (by hand, 2026-12-08).
local function encoded_name_of(k)
  if 38 + name_width < width - 1 then
    return users:sub((k - 1) * width + 39 + name_width, k * width - 1)
  end
  return urlencode(name_of(k))
end

-- Requests as wrk.format writes them, with the headers formatted once: wrk.format builds a
-- table and formats every header again on each call, CPU taken from the two cores the
-- server and Postgres run on. `wrk.headers` is complete once init has run (wrk adds Host
-- before it).
local header_text
local function format(method, path, body)
  if header_text == nil then
    local lines = {}
    for name, value in pairs(wrk.headers) do
      if name ~= "Content-Length" then lines[#lines + 1] = name .. ": " .. value .. "\r\n" end
    end
    header_text = table.concat(lines)
  end
  if body then
    return method .. " " .. path .. " HTTP/1.1\r\n" .. header_text .. "Content-Length: " .. #body
      .. "\r\n\r\n" .. body
  end
  return method .. " " .. path .. " HTTP/1.1\r\n" .. header_text .. "\r\n"
end

local PATCH_OP = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['

-- PATCH's body (the floor's write is sent the same one).
local function patch_body()
  return PATCH_OP .. '{"op":"replace","path":"displayName","value":"Patched '
    .. math.random(1000000) .. '"}]}'
end

-- Alternates adding a user of this thread's slice and removing the user this thread added
-- longest ago. A remove is only sent once more adds than the thread has connections are
-- pending, so the add it undoes has been answered: every remove takes a real member out.
local sent = 0
local function member_patch()
  local op, user
  -- (tail - head + 1) pending adds; `#queue` is no count once the front has been cleared.
  if (tail - head + 1) > conns_per_thread and sent % 2 == 0 then
    op, user = "remove", queue[head]
    queue[head] = nil
    head = head + 1
  else
    op, user = "add", outsiders[next_outsider]
    next_outsider = next_outsider % #outsiders + 1
    tail = tail + 1
    queue[tail] = user
  end
  sent = sent + 1
  local body = PATCH_OP .. '{"op":"' .. op .. '","path":"members","value":[{"value":"'
    .. user .. '"}]}]}'
  return format("PATCH", "/scim/v2/Groups/" .. group, body)
end

-- New users' names: unique per thread, request and operation, and per run (the clock).
local created = 0
local run_tag = tostring(os.time())
local function new_user_name()
  created = created + 1
  return "new-" .. run_tag .. "-" .. my_index .. "-" .. created .. "@bench.example"
end

local BULK_OPS = tonumber(os.getenv("BULK_OPS") or "1000")
local function bulk_create()
  local ops = {}
  for i = 1, BULK_OPS do
    ops[i] = '{"method":"POST","path":"/Users","bulkId":"b' .. i .. '","data":{"userName":"'
      .. new_user_name() .. '"}}'
  end
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":['
    .. table.concat(ops, ",") .. ']}'
  return format("POST", "/scim/v2/Bulk", body)
end

function request()
  if scenario == "get_user" then
    return format("GET", "/scim/v2/Users/" .. id_of(pick()))
  elseif scenario == "filter_user_name" then
    return format("GET", FILTER_PREFIX .. encoded_name_of(pick()) .. FILTER_SUFFIX)
  elseif scenario == "list_first" then
    return format("GET", "/scim/v2/Users?count=100")
  elseif scenario == "list_page" then
    return format("GET", "/scim/v2/Users?count=100&startIndex=" .. pick())
  elseif scenario == "put_user" then
    local i = pick()
    local body = '{"userName":"' .. name_of(i) .. '","displayName":"Put ' .. math.random(1000000) .. '"}'
    return format("PUT", "/scim/v2/Users/" .. id_of(i), body)
  elseif scenario == "patch_user" then
    return format("PATCH", "/scim/v2/Users/" .. id_of(pick()), patch_body())
  elseif scenario == "floor_write" then
    return format("PATCH", "/floor_write/" .. id_of(pick()), patch_body())
  elseif scenario == "member_big" or scenario == "member_small" then
    return member_patch()
  elseif scenario == "create_user" then
    return format("POST", "/scim/v2/Users", '{"userName":"' .. new_user_name() .. '"}')
  elseif scenario == "bulk_create" then
    return bulk_create()
  elseif scenario == "floor" then
    return format("GET", "/floor/" .. id_of(pick()))
  elseif scenario == "floor_statement" then
    return format("GET", "/floor_statement/" .. id_of(pick()))
  end
  error("unknown SCENARIO " .. tostring(scenario))
end

-- wrk counts answers outside 2xx/3xx as errors.status; print them so no run can hide them.
function done(summary, latency, requests)
  io.write(string.format("non2xx=%d\n", summary.errors.status))
  io.write(string.format("socket_errors=%d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
