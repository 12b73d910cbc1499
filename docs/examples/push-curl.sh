#!/bin/sh
# The curl examples of docs/push.md, run as they are by tests/docs/push_curl.py
# against a real mynad (the shipped conf/myna.conf with push turned on).
# BASE is the http listener, TOKEN the [module:rest] token.
set -eu
BASE=${BASE:-http://127.0.0.1:5280}
TOKEN=${TOKEN:-CHANGE-ME}

# One notification to two accounts: 201 {"id": …, "recipients": 2}
curl -sS -w ' %{http_code}\n' -X POST "$BASE/api/v1/notifications" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"to": ["alice@localhost", "bob@localhost"], "title": "Hello",
       "message": "The meeting moved to 10:00", "uri": "https://example.com/m/1",
       "ttl": 3600}' | tee post.out
ID=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' post.out)

# Its recipients' states: queued, delivered or expired
curl -sS -w ' %{http_code}\n' "$BASE/api/v1/notifications/$ID" \
  -H "Authorization: Bearer $TOKEN"

# A broadcast: every account of the host
curl -sS -w ' %{http_code}\n' -X POST "$BASE/api/v1/notifications" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"to": "*", "title": "Maintenance", "message": "Down at 22:00 for 10 minutes"}'

# androidpn's console form: the same, as a form (broadcast=Y for everyone)
curl -sS -w ' %{http_code}\n' "$BASE/notification.do" \
  -H "Authorization: Bearer $TOKEN" \
  --data-urlencode action=send --data-urlencode broadcast=N \
  --data-urlencode username=alice --data-urlencode title=Hello \
  --data-urlencode 'message=Hi from the console' --data-urlencode uri=

# A bad body: 400 with the reason
curl -sS -w ' %{http_code}\n' -X POST "$BASE/api/v1/notifications" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"to": "alice@localhost/phone", "title": "t", "message": "m"}'

# A wrong token: 401, before the body is read
curl -sS -w ' %{http_code}\n' "$BASE/api/v1/notifications/$ID" \
  -H 'Authorization: Bearer wrong'
