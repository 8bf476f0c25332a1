-- wrk script: one POST per request with a unique name, counting acknowledged answers.
-- usage: wrk ... -s post.lua URL -- <path> <vigil|etcd> <name-prefix> [<Authorization value>]
--   the optional 4th argument is sent as the Authorization header of every request
--   (vigild: "Bearer <token>" from POST /api/token)
--   vigil: POST <path> {"name": "<unique>", "type": "HEALTH_MONITOR_TCP", ...}  -> 201
--   etcd:  POST <path> {"key": b64(<unique>), "value": b64(<same JSON>)}         -> 200
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

function init(args)
  path = args[1]
  kind = args[2]
  prefix = args[3]
  counter = 0
  ok = 0
  bad = 0
  headers = { ["Content-Type"] = "application/json" }
  if args[4] ~= nil and args[4] ~= "" then
    headers["Authorization"] = args[4]
  end
  expected = (kind == "etcd") and 200 or 201
end

function request()
  counter = counter + 1
  local name = prefix .. "-" .. tid .. "-" .. counter
  local hm = '{"name":"' .. name .. '","type":"HEALTH_MONITOR_TCP","send_interval":5,' ..
             '"receive_timeout":4,"successful_checks":2,"failed_checks":2}'
  local body
  if kind == "etcd" then
    body = '{"key":"' .. b64(name) .. '","value":"' .. b64(hm) .. '"}'
  else
    body = hm
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status == expected then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_bad = total_bad + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d ok=%d bad=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "mean_us=%.1f sock_errors=%d timeouts=%d\n",
    summary.requests, total_ok, total_bad, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect + e.read + e.write, e.timeout))
end
