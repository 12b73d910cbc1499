/* module.h: writing a Myna module.
 *
 * A module is a shared object exporting one descriptor, `myna_module_desc`,
 * made with MYNA_MODULE_DEFINE, plus a manifest NAME.module beside the .so
 * generated from the descriptor at build time (myna-module-manifest, the
 * pkg-config variable manifest_tool), so the core builds its routing
 * table without opening lazy modules.  The core opens the .so when the
 * module is needed (at start for eager modules; on the first stanza of a
 * namespace it serves, or the first event it listens to, for lazy ones),
 * copies the descriptor (struct_size bytes at most), checks the ABI and
 * that descriptor and manifest agree on every field, then calls `load`
 * once per virtual host that enables it, with a MynaModule handle for that
 * host.
 *
 * Everything a module registers through its handle (IQ routes, hooks,
 * features, disco identities, items and extensions, stream handlers,
 * timers, HTTP routes, the services it provides) is removed by the core
 * on unload; the
 * core copies every string it is given, so nothing points into a closed .so.
 * The core also stops the MynaTimers the module's code made and drops the
 * per-session data whose destroy notify is the module's code; storage and
 * account callbacks still pending keep the module's state and code until
 * they have run (docs/modules.md §6).  `unload` frees only the module's
 * private state.  `save`/`restore` carry state across a hot reload.
 *
 * This header is all a module includes: it pulls in every public header a
 * module may use (<myna/http.h> and <myna/api.h> when the server was built
 * with MYNA_HAVE_HTTP). */
#pragma once

#include <glib.h>
#include <myna/version.h>
#include <myna/stanza.h>
#include <myna/jid.h>
#include <myna/storage.h>
#include <myna/config.h>
#include <myna/server.h>
#include <myna/timer.h>
#include <myna/accounts.h>
#include <myna/sasl.h>
#include <myna/xmlstream.h>
#ifdef MYNA_HAVE_HTTP
#include <myna/http.h>
#include <myna/api.h>
#endif

G_BEGIN_DECLS

typedef struct _MynaModule MynaModule;

/* Errors of the module system and of the calls modules make through it. */
#define MYNA_MODULE_ERROR (myna_module_error_quark ())
GQuark myna_module_error_quark (void);

typedef enum {
  MYNA_MODULE_ERROR_FAILED,
  MYNA_MODULE_ERROR_NOT_FOUND,    /* no such module, manifest or service */
  MYNA_MODULE_ERROR_ABI,          /* built for another module ABI */
  MYNA_MODULE_ERROR_MANIFEST,     /* descriptor and manifest disagree, or bad manifest */
  MYNA_MODULE_ERROR_CONFIG,       /* its configuration is invalid */
  MYNA_MODULE_ERROR_DEPENDENCY,   /* a required module or service is missing */
  MYNA_MODULE_ERROR_IN_USE,       /* other modules use what it provides */
  MYNA_MODULE_ERROR_BUSY,         /* being reloaded */
  MYNA_MODULE_ERROR_TIMEOUT,      /* an IQ request got no answer in time */
  MYNA_MODULE_ERROR_STANZA,       /* an IQ request was answered with an error */
} MynaModuleError;

typedef enum {
  MYNA_MODULE_LAZY = 0,   /* opened on first use */
  MYNA_MODULE_EAGER = 1,  /* opened at start (stream features, SASL, hooks) */
} MynaModuleMode;

typedef enum {
  MYNA_IQ_GET = 1 << 0,
  MYNA_IQ_SET = 1 << 1,
} MynaIqType;

/* The one exported descriptor.  abi_version and struct_size come first and
 * never move; new fields are only ever added at the end. */
typedef struct {
  guint32             abi_version;   /* MYNA_ABI_MAJOR at build time */
  guint32             struct_size;   /* sizeof (MynaModuleDesc) at build time */
  const char         *name;
  const char         *version;
  const char *const  *serves;        /* namespaces routed to this module */
  const char *const  *events;        /* events that load it when lazy */
  const char *const  *requires;      /* modules that must load first */
  MynaModuleMode      mode;
  const MynaConfigKey *config;       /* its [module:NAME] keys, or NULL */
  gboolean  (*load)    (MynaModule *mod, GError **error);
  void      (*unload)  (MynaModule *mod);
  /* Optional: state to carry across a reload, and its restoration. */
  GVariant *(*save)    (MynaModule *mod);
  void      (*restore) (MynaModule *mod, GVariant *state);
  /* ---- ABI 2 ---- */
  const char         *description;      /* one line, for `mynactl modules` */
  const char *const  *features;         /* disco#info features of the host */
  const char *const  *account_features; /* features at accounts' bare JIDs */
  gsize               config_size;      /* sizeof the typed config struct */
  const char *const  *provides;         /* services it provides: "NAME/VERSION" */
  const char *const  *uses;             /* services it needs: "NAME/VERSION" (minimum) */
  /* Optional: called after `load` for every live session of the host
   * (after a reload, or a load while clients are connected), so the new
   * instance re-attaches the per-session state it keeps. */
  void      (*attach)  (MynaModule *mod, MynaSession *session);
} MynaModuleDesc;

#define MYNA_STRV(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define MYNA_CONFIG_KEYS(...) ((const MynaConfigKey[]) { __VA_ARGS__, MYNA_CONFIG_END })

#define MYNA_MODULE_EXPORT __attribute__ ((visibility ("default")))

/* Defines the exported descriptor of module NAME:
 *   MYNA_MODULE_DEFINE (ping, .version = "1.0", .load = ping_load);  */
#define MYNA_MODULE_DEFINE(NAME, ...)                              \
  MYNA_MODULE_EXPORT extern const MynaModuleDesc myna_module_desc; \
  const MynaModuleDesc myna_module_desc = {                        \
    .abi_version = MYNA_ABI_MAJOR,                                 \
    .struct_size = sizeof (MynaModuleDesc),                        \
    .name = #NAME,                                                 \
    __VA_ARGS__                                                    \
  }

/* The manifest of a module's descriptor @desc (as exported by the .so at
 * @path, named @library in the manifest), as key-file text: what the SDK's
 * myna-module-manifest tool writes.  NULL with MYNA_MODULE_ERROR when the
 * descriptor is unusable (another ABI, too short, no name, a config
 * default that is not a value of its key).  Returns: (transfer full) */
char        *myna_module_manifest_for (const MynaModuleDesc *desc, const char *path,
                                       const char *library, GError **error);

/* ---- Identity and context ------------------------------------------------ */

const char  *myna_module_get_name (MynaModule *mod);
MynaHost    *myna_module_get_host (MynaModule *mod);
MynaServer  *myna_module_get_server (MynaModule *mod);
MynaStorage *myna_module_get_storage (MynaModule *mod);
/* Private per-instance state; @destroy runs on unload, after the
 * instance's pending storage and account callbacks. */
void         myna_module_set_data (MynaModule *mod, gpointer data,
                                   GDestroyNotify destroy);
gpointer     myna_module_get_data (MynaModule *mod);

/* ---- Configuration: keys of [module:NAME], host overrides first ---------- */

/* The instance's typed config snapshot: a struct of the descriptor's
 * config_size holding each key of .config at its .offset (gint64 for INT,
 * SIZE and DURATION; gboolean for BOOL; char * for STRING; char ** for
 * LIST), parsed, clamped to its bounds, host overrides applied, defaults
 * filled.  NULL when the descriptor has no config_size.  Rebuilt when a
 * configuration reload is accepted: valid until the handler returns, so
 * read it afresh in every callback and keep no pointer into it.
 *   const PingConfig *cfg = myna_module_get_config (mod);  */
const void  *myna_module_get_config (MynaModule *mod);
/* Lookups by name (from the snapshot when the module has one). */

char        *myna_module_config_string (MynaModule *mod, const char *key);
gint64       myna_module_config_int (MynaModule *mod, const char *key);
gboolean     myna_module_config_bool (MynaModule *mod, const char *key);
/* Returns: (transfer full) NULL-terminated */
char       **myna_module_config_list (MynaModule *mod, const char *key);

/* ---- Registrations (all removed on unload; refused after it) ------------ */

typedef MynaResult (*MynaStanzaHandler) (MynaCall *call, MynaStanza *stanza,
                                         gpointer user_data);

/* Owns IQs of @types whose payload is <@element xmlns=@ns>, addressed to
 * this host or to a bare JID of it.  One owner per (host, type, ns,
 * element): a second registration fails with a warning and returns FALSE. */
gboolean     myna_module_route_iq (MynaModule *mod, MynaIqType types,
                                   const char *ns, const char *element,
                                   MynaStanzaHandler handler,
                                   gpointer user_data, GDestroyNotify destroy);
/* Adds @handler to the chain of @event at @priority (higher runs first). */
void         myna_module_hook (MynaModule *mod, const char *event, int priority,
                               MynaStanzaHandler handler, gpointer user_data,
                               GDestroyNotify destroy);
/* Advertises a disco#info feature of this host. */
void         myna_module_add_feature (MynaModule *mod, const char *feature);
/* Advertises a disco#info feature of this host's accounts: one the server
 * implements on an account's behalf at its bare JID (XEP-0030 §3.1; e.g.
 * jabber:iq:last).  A lazy module lists it in its manifest's
 * account_features too, so it is advertised before the module opens. */
void         myna_module_add_account_feature (MynaModule *mod, const char *feature);
/* Disco (XEP-0030) of this host's domain: an identity (@name nullable),
 * e.g. ("conference", "text", "Chatrooms"); an item (@node and @name
 * nullable) listed in disco#items.  A lazy module's are there once it has
 * loaded. */
void         myna_module_add_identity (MynaModule *mod, const char *category,
                                       const char *type, const char *name);
/* An identity of this host's accounts, answered at their bare JIDs
 * besides account/registered (XEP-0030 §3.1; e.g. ("pubsub", "pep")).
 * Registered in `load`: an eager module's is there from the start. */
void         myna_module_add_account_identity (MynaModule *mod, const char *category,
                                               const char *type, const char *name);
void         myna_module_add_disco_item (MynaModule *mod, const char *jid,
                                         const char *node, const char *name);
/* Adds an XEP-0128 extension to this host's disco#info: @form (borrowed;
 * the core keeps a copy) is <x xmlns='jabber:x:data' type='result'> with a
 * hidden FORM_TYPE field.  One form per FORM_TYPE per host: FALSE, with a
 * warning, for a second one or a form without FORM_TYPE. */
gboolean     myna_module_add_disco_extension (MynaModule *mod, MynaStanza *form);

/* Stream features: @func adds children to <stream:features/> offered to
 * @session (before or after authentication, as it sees fit). */
typedef void (*MynaFeaturesFunc) (MynaSession *session, MynaStanza *features,
                                  gpointer user_data);
void         myna_module_add_stream_features (MynaModule *mod,
                                              MynaFeaturesFunc func,
                                              gpointer user_data,
                                              GDestroyNotify destroy);
/* Stream-level elements (<auth/>, <starttls/>, <enable/>, …) of namespace
 * @ns and name @element (NULL for any), before or after authentication.
 * Before authentication a client's <iq/> is one too: it goes first to the
 * handler registered for its payload's namespace and element exactly
 * (e.g. ("jabber:iq:auth", "query"); never a NULL-@element one), then, if
 * that answers MYNA_PASS, to the one of (MYNA_NS_CLIENT, "iq"). */
void         myna_module_route_stream (MynaModule *mod, const char *ns,
                                       const char *element,
                                       MynaStanzaHandler handler,
                                       gpointer user_data,
                                       GDestroyNotify destroy);

/* A repeating timer owned by the module; @func returns FALSE to stop. */
typedef gboolean (*MynaModuleTimerFunc) (MynaModule *mod, gpointer user_data);
void         myna_module_add_timer (MynaModule *mod, guint interval_ms,
                                    MynaModuleTimerFunc func,
                                    gpointer user_data, GDestroyNotify destroy);

/* ---- Admin commands: mynactl through the admin socket --------------------- */

/* A module's command on the admin socket: `mynactl NAME WORD…` sends the
 * line "NAME WORD…", and the core calls the handler registered for NAME
 * with the line's words (@argv[0] is NAME; NULL-terminated), in the
 * module's context.  The handler appends its answer to @out, as lines
 * ending in '\n', and returns TRUE; the core ends the answer with "OK"
 * (mynactl exits 0).  Or it sets @error and returns FALSE: the core sends
 * what @out holds, then "ERR <message>" (mynactl exits 1).  It answers
 * before it returns (the main loop waits meanwhile: keep it short). */
typedef gboolean (*MynaAdminCommandFunc) (MynaModule *mod, const char *const *argv,
                                          GString *out, gpointer user_data,
                                          GError **error);

/* Adds the admin command @name (one word of [a-z0-9_-]) with a one-line
 * @usage (nullable) shown by the admin socket when it is given a command
 * it does not know.  Several instances of one module (one per host) may
 * add the same name: the earliest one still loaded answers (a module
 * serving several hosts finds the others itself, and reads a host from
 * the words); another module's, or a built-in command's, name is refused
 * with a warning (FALSE; @destroy runs).  Removed on unload. */
gboolean      myna_module_add_admin_command (MynaModule *mod, const char *name,
                                             const char *usage,
                                             MynaAdminCommandFunc func,
                                             gpointer user_data,
                                             GDestroyNotify destroy);

/* ---- Services: what one module offers others ----------------------------- */

/* A module provides a service, a table of functions under a NAME and an
 * integer VERSION, and declares it in its descriptor: `.provides =
 * MYNA_STRV ("roster/1")`.  Another module uses it: `.uses = MYNA_STRV
 * ("roster/1")` (the minimum version it needs) makes the core load a
 * provider first, on the same host, and refuse to unload the provider
 * while the user is loaded (`mynactl unload --cascade` unloads the users
 * first).  A service used without being declared in `.uses` is optional:
 * the handle is bound whenever a provider on the host provides it, and
 * empty otherwise.  Services are per host.  The handle stays valid across
 * a reload of the provider: the core re-binds it to the new instance and
 * table when that instance provides the service again.  Calls into the
 * service run in the provider's context (myna_service_enter/_leave), so
 * the storage, session data and timers its code touches are its own; a
 * service's public header wraps each function in an inline that does so
 * (<myna/roster.h>, <myna/presence.h>). */
typedef struct _MynaService MynaService;

/* In `load`: offers @table (static, in the module's .so; it must stay
 * valid until unload) as @name version @version on the module's host.
 * FALSE with MYNA_MODULE_ERROR_DEPENDENCY when not declared in `.provides`,
 * or when another module of the host provides @name already. */
gboolean      myna_module_provide (MynaModule *mod, const char *name, guint version,
                                   gconstpointer table, GError **error);
/* In `load`: the handle to service @name (version @min_version at least)
 * of the host, owned by the core until the module unloads.  For a service
 * declared in `.uses`, NULL with MYNA_MODULE_ERROR_DEPENDENCY when no
 * provider with that version provides it; an optional one is returned
 * unbound until a provider appears.  Returns: (transfer none) */
MynaService  *myna_module_use (MynaModule *mod, const char *name, guint min_version,
                               GError **error);
/* From the module's code (hooks, handlers, callbacks, after load): the
 * calling instance's handle to service @name (version @min_version at
 * least, or its `.uses` version if higher) as provided on @host (on its
 * main host for a [component:DOMAIN]), so that code serving several
 * hosts keeps no table of handles.  The same handle for the same host
 * each time; for the module's own host, the one myna_module_use gives.
 * It is bound while a provider on @host provides the service, re-bound
 * when that provider reloads, and unbound (its wrappers do nothing)
 * while none does; owned by the core and freed with the calling
 * instance, after its last pending callback.  Only the own host's
 * provider is kept loaded for the caller (`.uses`).
 * Returns: (transfer none) */
MynaService  *myna_host_get_service (MynaHost *host, const char *name, guint min_version);
/* The provider's table, or NULL while no provider is bound (a provider
 * unloaded, or an optional service nobody provides).  Read it again for
 * each call: it changes when the provider reloads.
 * Returns: (transfer none) (nullable) */
gconstpointer myna_service_get_table (MynaService *svc);
/* The version the bound provider provides (0 while unbound). */
guint         myna_service_get_version (MynaService *svc);
/* The bound provider instance, or NULL.  Returns: (transfer none) */
MynaModule   *myna_service_get_provider (MynaService *svc);
/* Runs the caller as the service's provider until myna_service_leave
 * (@previous: what myna_service_enter returned).  Returns: (transfer none) */
MynaModule   *myna_service_enter (MynaService *svc);
void          myna_service_leave (MynaModule *previous);

/* ---- IQ requests ------------------------------------------------------------ */

/* The outcome of an IQ request, exactly one of: the result (@reply set,
 * @error NULL); an error reply (@reply set, @error MYNA_MODULE_ERROR_STANZA
 * whose message is the condition, e.g. "service-unavailable"); no answer in
 * time (@reply NULL, MYNA_MODULE_ERROR_TIMEOUT); refused because the
 * instance has MYNA_IQ_MAX_PENDING requests in flight (@reply NULL,
 * MYNA_MODULE_ERROR_FAILED).  @reply is borrowed. */
typedef void (*MynaIqReplyFunc) (MynaModule *mod, MynaStanza *reply,
                                 const GError *error, gpointer user_data);

/* Requests one instance may have in flight; more are refused. */
#define MYNA_IQ_MAX_PENDING 1024
/* The timeout of a request sent with @timeout_ms 0. */
#define MYNA_IQ_DEFAULT_TIMEOUT_MS 30000

/* Sends @iq (type get or set, with a `to`) and calls @func once with its
 * outcome, in this module's context, from the main loop (never from inside
 * this call).  The core sets @iq's id to a unique one, and its `from` to
 * the host when it has none, then routes it like any stanza.  The reply is
 * the result or error with that id coming from @iq's `to`: the core takes
 * it before any hook or route sees it (an answer from another JID with the
 * same id is not taken).  When the module unloads first, only @destroy
 * runs.  @iq is borrowed (modified as said).
 *
 *   g_autoptr(MynaStanza) ping = myna_stanza_build (
 *       "<iq type='get' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", jid);
 *   myna_module_send_iq (mod, ping, 10000, on_pong, NULL, NULL);       */
void         myna_module_send_iq (MynaModule *mod, MynaStanza *iq, guint timeout_ms,
                                  MynaIqReplyFunc func, gpointer user_data,
                                  GDestroyNotify destroy);

/* ---- Session state changes, for auth and bind modules -------------------- */

/* Marks @session authenticated as @local on its host and restarts the
 * stream; runs MYNA_EVENT_SESSION_AUTHENTICATED. */
void         myna_session_set_authenticated (MynaSession *session,
                                             const char *local);
/* As myna_session_set_authenticated, without restarting the stream: for
 * XEP-0078 (jabber:iq:auth), whose client goes on in the same stream. */
void         myna_session_set_authenticated_in_stream (MynaSession *session,
                                                       const char *local);
/* Binds @resource; FALSE with a reason when it cannot. */
gboolean     myna_session_bind (MynaSession *session, const char *resource,
                                GError **error);
/* Restarts the XML stream after the current element (SASL success). */
void         myna_session_restart_stream (MynaSession *session);
/* TLS channel binding data of @type ("tls-exporter", "tls-server-end-point")
 * for SASL -PLUS mechanisms, or NULL when unavailable.
 * Returns: (transfer full) (nullable) */
GBytes      *myna_session_get_channel_binding (MynaSession *session,
                                               const char *type);
/* Sends raw, already serialised XML. */
void         myna_session_send_raw (MynaSession *session, const char *xml,
                                    gssize len);

G_END_DECLS
