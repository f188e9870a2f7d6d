-- wrk script for scimd benchmarks. Environment: SCENARIO, TOKEN, DATA (seed output dir).
-- Each thread loads the seeded ids once; every request picks one at random.
local scenario = os.getenv("SCENARIO")
local token = os.getenv("TOKEN")
local data = os.getenv("DATA")
local users, outsiders, groups = {}, {}, {}
local counter = 0

local function lines(file)
  local out = {}
  for line in io.lines(data .. "/" .. file) do out[#out + 1] = line end
  return out
end

function init(args)
  for _, line in ipairs(lines("users.txt")) do
    local id, name = line:match("(%S+) (%S+)")
    users[#users + 1] = { id = id, name = name }
  end
  outsiders = lines("outsiders.txt")
  local big, small = lines("groups.txt")[1]:match("(%S+) (%S+)")
  groups = { big = big, small = small }
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/scim+json"
end

local function pick(list) return list[math.random(#list)] end

local function member_patch(group)
  counter = counter + 1
  local op = (counter % 2 == 1) and "add" or "remove"
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"'
    .. op .. '","path":"members","value":[{"value":"' .. pick(outsiders) .. '"}]}]}'
  return wrk.format("PATCH", "/scim/v2/Groups/" .. group, nil, body)
end

function request()
  if scenario == "get_user" then
    return wrk.format("GET", "/scim/v2/Users/" .. pick(users).id)
  elseif scenario == "filter_user_name" then
    return wrk.format("GET", "/scim/v2/Users?filter=userName%20eq%20%22" .. pick(users).name .. "%22")
  elseif scenario == "list_page" then
    return wrk.format("GET", "/scim/v2/Users?count=100&startIndex=" .. math.random(#users))
  elseif scenario == "put_user" then
    local u = pick(users)
    local body = '{"userName":"' .. u.name .. '","displayName":"Bench ' .. math.random(1000000) .. '"}'
    return wrk.format("PUT", "/scim/v2/Users/" .. u.id, nil, body)
  elseif scenario == "patch_user" then
    local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":'
      .. '[{"op":"replace","path":"displayName","value":"Patched ' .. math.random(1000000) .. '"}]}'
    return wrk.format("PATCH", "/scim/v2/Users/" .. pick(users).id, nil, body)
  elseif scenario == "member_big" then
    return member_patch(groups.big)
  elseif scenario == "member_small" then
    return member_patch(groups.small)
  elseif scenario == "floor" then
    return wrk.format("GET", "/floor/" .. pick(users).id)
  end
  error("unknown SCENARIO " .. tostring(scenario))
end

-- Non-2xx answers are counted by wrk as errors; print them so a run cannot hide them.
function done(summary, latency, requests)
  io.write(string.format("non2xx=%d\n", summary.errors.status))
end
