-- wrk script: binary-mode CloudEvents to /publish, each with a fresh ce-id.
-- Arguments: body size in bytes, a tag that makes the ids unique to the run.
-- Used by perf/bench_publisher.sh and perf/callgrind_publisher.sh.
local body, tag, n
function init(args) body = string.rep("x", tonumber(args[1])); tag = args[2]; n = 0 end
function request()
  n = n + 1
  return wrk.format("POST", "/publish", {["ce-specversion"] = "1.0", ["ce-id"] = n .. "-" .. tag,
    ["ce-source"] = "bench", ["ce-type"] = "order.created.v1", ["Content-Type"] = "text/plain"}, body)
end
