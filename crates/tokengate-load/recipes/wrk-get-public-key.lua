-- wrk recipe: REST Domain.get_public_key (POST with a JSON body).
--   DOMAIN=domain-dev wrk -t1 -c64 -d10s --latency -s wrk-get-public-key.lua http://127.0.0.1:50051
-- wrk counts every non-2xx answer under "Non-2xx or 3xx responses": REST
-- errors are HTTP statuses, so wrk's success count is right here (unlike
-- h2load with gRPC, where errors travel in a 200 answer).
local domain = os.getenv("DOMAIN") or "domain-dev"

wrk.method = "POST"
wrk.path = "/identity/v1/domain/get-public-key"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"domain_id":"%s"}', domain)
