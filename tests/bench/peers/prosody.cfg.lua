-- tests/bench/peers/prosody.cfg.lua: Prosody as benchmarked by
-- tests/bench/run.sh, which replaces @DIR@ with its scratch directory and
-- @PORT@ with the c2s port.  Same features as tests/bench/myna.conf:
-- roster, presence, offline, ping, disco, open in-band registration, no
-- archiving, PLAIN allowed on plain TCP, SCRAM hashes at 4096 iterations,
-- no rate limits.  Nagle is off and the backlog raised (see
-- /work/shared/PEERS.md): Myna sets TCP_NODELAY too.

run_as_root = true
daemonize = false
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
log = { warn = "@DIR@/prosody.log" }
plugin_paths = {}

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}
network_backend = "epoll"
network_settings = { nagle = false; tcp_backlog = 1024 }

modules_enabled = {
  "roster"; "saslauth"; "disco"; "ping"; "offline"; "register"; "presence";
}
modules_disabled = { "s2s"; "tls"; "mam"; "carbons"; "smacks"; "csi_simple"; "limits"; "uptime"; "time"; "version"; "posix"; }

authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"

c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
c2s_stanza_size_limit = 256 * 1024
limits = {}

VirtualHost "localhost"
