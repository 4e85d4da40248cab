-- wrk script for benchmarks/token_throughput.py: every request POSTs a different pre-signed token
-- request body, each exactly once (a replayed assertion would be refused, not measured).
--
--   wrk -t2 -c16 -d5s -s benchmarks/token_bodies.lua URL -- PREFIX
--
-- Thread N reads PREFIX.N (one form-encoded body per line). A thread that has sent all its
-- bodies stops and creates PREFIX.N.done, so the caller knows the run ran dry.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local bodies, sent, prefix = {}, 0, nil
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  prefix = args[1] .. "." .. id
  for line in io.lines(prefix) do
    bodies[#bodies + 1] = line
  end
end

function request()
  sent = sent + 1
  local body = bodies[sent]
  if body == nil then
    -- Ran dry: stop this thread. wrk still sends what request() returns, so send a body the
    -- server will refuse (counted as non-2xx) rather than replay a valid assertion.
    io.open(prefix .. ".done", "w"):close()
    wrk.thread:stop()
    return wrk.format("POST", nil, headers, "grant_type=none")
  end
  bodies[sent] = nil
  return wrk.format("POST", nil, headers, body)
end
