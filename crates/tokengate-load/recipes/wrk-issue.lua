-- wrk recipe: REST Token.issue (a password check per call).
--   TOKENGATE_PASSWORD='<password>' DOMAIN=domain-dev USER_ID=admin@example.com \
--     wrk -t1 -c8 -d10s --latency -s wrk-issue.lua http://127.0.0.1:50051
-- The values are put in the JSON as they are: no quotes or backslashes in them.
-- Note: tokengate counts failed logins per user and per IP (limits.*): a
-- wrong password soon turns into 429 answers.
local domain = os.getenv("DOMAIN") or "domain-dev"
local user = os.getenv("USER_ID") or "admin@example.com"
local password = os.getenv("TOKENGATE_PASSWORD")
if password == nil then
  io.stderr:write("wrk-issue.lua: set TOKENGATE_PASSWORD\n")
  os.exit(1)
end

wrk.method = "POST"
wrk.path = "/identity/v1/token/issue"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"domain_id":"%s","user_id":"%s","credentials":{"password":"%s"}}',
  domain, user, password)

-- Print how many answers were not 2xx/3xx at the end of the run.
function done(summary, latency, requests)
  io.write(string.format("non-2xx/3xx answers: %d of %d\n",
    summary.errors.status, summary.requests))
end
