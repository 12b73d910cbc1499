/* cloud_notify: XEP-0357 Push Notifications (urn:xmpp:push:0), the
 * server's side, after Prosody's mod_cloud_notify.
 *
 * A client enables push with <enable jid='APP-SERVER' node='NODE'/> (and
 * an optional publish-options form) sent to its own account, and disables
 * it with <disable jid node?/>.  Registrations are stored per account in
 * the key-value store "registrations" (one key per (jid, node): a hash of
 * both), at most `max_registrations` an account (the oldest goes).  Which
 * accounts have registrations is kept apart, under the host in the store
 * "push-accounts" (one key per such account), read once into memory, so
 * that a message to an account without any costs no storage read and
 * leaves nothing in memory: the module keeps (and reads) the
 * registrations of those accounts only, and forgets an account when its
 * last registration goes.
 *
 * At message/bare and message/full, priority -50 (after carbons and mam,
 * before offline at -100, which stores): a message worth a notification
 * for an account with registrations, when no session would receive it
 * (myna_server_count_recipients() is 0) or every bound session of the
 * account is hibernated by stream management, makes the module publish
 * the urn:xmpp:push:summary form (message-count since the user was last
 * online, last-message-sender, and last-message-body when `include_body`)
 * to each registration's app server, with the publish-options sent back.
 * The hook always passes: offline still stores the message.
 *
 * An error answer (except type 'wait') or no answer within `timeout`
 * counts against the registration; at `max_errors` it is disabled, as
 * Prosody does.  A result resets the count. */
#include <myna/module.h>

#include <string.h>

#define NS_PUSH            "urn:xmpp:push:0"
#define NS_PUBSUB          "http://jabber.org/protocol/pubsub"
#define NS_DATA            "jabber:x:data"
#define NS_DELAY           "urn:xmpp:delay"
#define FORM_SUMMARY       "urn:xmpp:push:summary"
#define FORM_PUBLISH_OPTS  "http://jabber.org/protocol/pubsub#publish-options"
#define CLOUD_NOTIFY_STORE "registrations"
/* Under the host (user ""): one key per account with registrations. */
#define CLOUD_NOTIFY_INDEX "push-accounts"
/* The largest publish-options form kept (serialised bytes). */
#define CLOUD_NOTIFY_MAX_FORM 4096

/* The module's typed configuration ([module:cloud_notify]). */
typedef struct {
  gint64   max_registrations;
  gboolean include_body;
  gint64   max_errors;
  gint64   timeout;            /* ms */
} CloudNotifyConfig;

/* One app server (jid, node) an account enabled. */
typedef struct {
  char  *key;                  /* its key in the store */
  char  *jid;
  char  *node;
  char  *options;              /* serialised publish-options <x/>, or NULL */
  gint64 since;                /* when enabled (real time, µs) */
  guint  errors;               /* errors since the last result */
} CloudNotifyReg;

/* What the module knows of one account: read from the store on first use. */
typedef struct {
  GPtrArray *regs;             /* CloudNotifyReg*, oldest first */
  guint      count;            /* messages notified since it was last online */
} CloudNotifyAccount;

typedef struct {
  MynaModule *mod;
  GHashTable *accounts;        /* local → CloudNotifyAccount*: accounts with
                                * registrations only */
  GHashTable *enabled;         /* locals with registrations (a set), read from
                                * CLOUD_NOTIFY_INDEX on first use; NULL before */
} CloudNotify;

/* A publish in flight: which registration it is for. */
typedef struct {
  CloudNotify *self;
  char        *local;
  char        *key;
} CloudNotifyOp;

/* An enable or disable waiting for its write to be durable. */
typedef struct {
  CloudNotify *self;
  MynaStanza  *reply;          /* the answer, sent from the storage callback */
  MynaStanza  *iq;             /* to build an error answer from */
  guint        left;           /* writes not yet done */
  gboolean     failed;
} CloudNotifyPending;

static void
cloud_notify_reg_free (CloudNotifyReg *reg)
{
  g_free (reg->key);
  g_free (reg->jid);
  g_free (reg->node);
  g_free (reg->options);
  g_free (reg);
}

static void
cloud_notify_account_free (CloudNotifyAccount *account)
{
  g_ptr_array_unref (account->regs);
  g_free (account);
}

static const char *
cloud_notify_host_name (CloudNotify *self)
{
  return myna_host_get_name (myna_module_get_host (self->mod));
}

static MynaStorage *
cloud_notify_storage (CloudNotify *self)
{
  return myna_module_get_storage (self->mod);
}

/* The store key of (jid, node).  Returns: (transfer full) */
static char *
cloud_notify_key (const char *jid, const char *node)
{
  g_autofree char *both = g_strconcat (jid, "\n", node, NULL);

  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, both, -1);
}

/* The stored form of @reg: <registration jid node since>[<x/>]</registration>.
 * Returns: (transfer full) */
static char *
cloud_notify_reg_serialise (CloudNotifyReg *reg)
{
  g_autoptr(MynaStanza) st = myna_stanza_new ("registration", NS_PUSH);
  g_autofree char *since = g_strdup_printf ("%" G_GINT64_FORMAT, reg->since);

  myna_stanza_set_attr (st, "jid", reg->jid);
  myna_stanza_set_attr (st, "node", reg->node);
  myna_stanza_set_attr (st, "since", since);
  if (reg->options != NULL)
    {
      g_autoptr(MynaStanza) form = myna_stanza_parse (reg->options, -1, NULL);
      if (form != NULL)
        myna_stanza_append (st, form);
    }
  return myna_stanza_to_string (st);
}

/* A registration read back from the store, or NULL (logged) when the
 * stored value is not one.  Returns: (transfer full) (nullable) */
static CloudNotifyReg *
cloud_notify_reg_parse (const char *key, const char *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) st = myna_stanza_parse (value, -1, &error);
  MynaStanza *form;
  CloudNotifyReg *reg;

  if (st == NULL || myna_stanza_get_attr (st, "jid") == NULL
      || myna_stanza_get_attr (st, "node") == NULL)
    {
      g_warning ("push registration %s is unreadable: ignored (%s)", key,
                 error != NULL ? error->message : "no jid or node");
      return NULL;
    }
  reg = g_new0 (CloudNotifyReg, 1);
  reg->key = g_strdup (key);
  reg->jid = g_strdup (myna_stanza_get_attr (st, "jid"));
  reg->node = g_strdup (myna_stanza_get_attr (st, "node"));
  reg->since = g_ascii_strtoll (myna_stanza_get_attr (st, "since") ?: "0", NULL, 10);
  form = myna_stanza_get_child (st, "x", NS_DATA);
  if (form != NULL)
    reg->options = myna_stanza_to_string (form);
  return reg;
}

static gint
cloud_notify_reg_by_age (gconstpointer a, gconstpointer b)
{
  const CloudNotifyReg *ra = *(CloudNotifyReg *const *) a;
  const CloudNotifyReg *rb = *(CloudNotifyReg *const *) b;

  return ra->since < rb->since ? -1 : ra->since > rb->since;
}

/* @local's registrations, read from the store the first time.
 * Returns: (transfer none) (nullable) NULL when the store cannot be read */
static CloudNotifyAccount *
cloud_notify_account (CloudNotify *self, const char *local)
{
  CloudNotifyAccount *account = g_hash_table_lookup (self->accounts, local);
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) all = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (account != NULL)
    return account;
  all = myna_kv_get_all (cloud_notify_storage (self), cloud_notify_host_name (self), local,
                         CLOUD_NOTIFY_STORE, &error);
  if (all == NULL)
    {
      g_warning ("push registrations of %s@%s cannot be read: %s", local,
                 cloud_notify_host_name (self), error->message);
      return NULL;
    }
  account = g_new0 (CloudNotifyAccount, 1);
  account->regs = g_ptr_array_new_with_free_func ((GDestroyNotify) cloud_notify_reg_free);
  g_hash_table_iter_init (&iter, all);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      CloudNotifyReg *reg = cloud_notify_reg_parse (key, value);
      if (reg != NULL)
        g_ptr_array_add (account->regs, reg);
    }
  g_ptr_array_sort (account->regs, cloud_notify_reg_by_age);
  g_hash_table_insert (self->accounts, g_strdup (local), account);
  return account;
}

static CloudNotifyReg *
cloud_notify_find (CloudNotifyAccount *account, const char *key, guint *index)
{
  for (guint i = 0; i < account->regs->len; i++)
    {
      CloudNotifyReg *reg = account->regs->pdata[i];
      if (strcmp (reg->key, key) == 0)
        {
          if (index != NULL)
            *index = i;
          return reg;
        }
    }
  return NULL;
}

/* Whether @local has registrations, from the set of such accounts (read
 * from the store the first time: FALSE, logged, when it cannot be). */
static gboolean
cloud_notify_has_registrations (CloudNotify *self, const char *local)
{
  if (self->enabled == NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GHashTable) all = myna_kv_get_all (cloud_notify_storage (self),
                                                   cloud_notify_host_name (self), "",
                                                   CLOUD_NOTIFY_INDEX, &error);
      GHashTableIter iter;
      gpointer key;

      if (all == NULL)
        {
          g_warning ("accounts with push registrations on %s cannot be read: %s",
                     cloud_notify_host_name (self), error->message);
          return FALSE;
        }
      self->enabled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_iter_init (&iter, all);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_hash_table_add (self->enabled, g_strdup (key));
    }
  return g_hash_table_contains (self->enabled, local);
}

/* Records whether @local has registrations now (@on), in memory and in
 * the store (the write is one of @p's when @p is given); with none, the
 * account is forgotten.  Returns: the writes queued (0 or 1). */
static guint
cloud_notify_mark (CloudNotify *self, const char *local, gboolean on, CloudNotifyPending *p);

/* ---- enable and disable --------------------------------------------------- */

static void
cloud_notify_pending_free (CloudNotifyPending *p)
{
  myna_stanza_unref (p->reply);
  myna_stanza_unref (p->iq);
  g_free (p);
}

/* One write of an enable or disable is durable (or failed); the last one
 * answers the client, through the router to its full JID. */
static void
cloud_notify_written (const GError *error, gpointer user_data)
{
  CloudNotifyPending *p = user_data;

  if (error != NULL)
    {
      g_warning ("push registration change of %s not stored: %s",
                 myna_stanza_get_attr (p->reply, "from"), error->message);
      p->failed = TRUE;
    }
  if (--p->left > 0)
    return;
  if (p->failed)
    {
      g_autoptr(MynaStanza) fail = myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                                          "internal-server-error", NULL);
      myna_stanza_set_attr (fail, "from", myna_stanza_get_attr (p->reply, "from"));
      myna_server_route (myna_module_get_server (p->self->mod), fail);
    }
  else
    myna_server_route (myna_module_get_server (p->self->mod), p->reply);
}

static void
cloud_notify_pending_done (gpointer data)
{
  CloudNotifyPending *p = data;

  if (p->left == 0)
    cloud_notify_pending_free (p);
}

/* A pending answer to @iq from @account_jid, for @writes writes. */
static CloudNotifyPending *
cloud_notify_pending_new (CloudNotify *self, MynaStanza *iq, const char *account_jid,
                          guint writes)
{
  CloudNotifyPending *p = g_new0 (CloudNotifyPending, 1);

  p->self = self;
  p->iq = myna_stanza_ref (iq);
  p->reply = myna_stanza_new_iq_result (iq);
  myna_stanza_set_attr (p->reply, "from", account_jid);
  p->left = writes;
  return p;
}

/* Queues the write of @value (NULL: delete) for @key, one of @p's. */
static void
cloud_notify_write (CloudNotify *self, const char *local, const char *key, const char *value,
                    CloudNotifyPending *p)
{
  myna_kv_set (cloud_notify_storage (self), cloud_notify_host_name (self), local,
               CLOUD_NOTIFY_STORE, key, value, cloud_notify_written, p,
               cloud_notify_pending_done);
}

static guint
cloud_notify_mark (CloudNotify *self, const char *local, gboolean on, CloudNotifyPending *p)
{
  gboolean was = cloud_notify_has_registrations (self, local);

  if (!on)
    g_hash_table_remove (self->accounts, local);
  if (self->enabled == NULL || was == on)
    return 0;
  if (on)
    g_hash_table_add (self->enabled, g_strdup (local));
  else
    g_hash_table_remove (self->enabled, local);
  if (p != NULL)
    p->left++;
  myna_kv_set (cloud_notify_storage (self), cloud_notify_host_name (self), "",
               CLOUD_NOTIFY_INDEX, local, on ? "1" : NULL,
               p != NULL ? cloud_notify_written : NULL, p,
               p != NULL ? cloud_notify_pending_done : NULL);
  return 1;
}

/* The sender's account when @iq is addressed to it (no `to`, or its own
 * bare JID), else NULL: push is enabled by the account for itself. */
static const char *
cloud_notify_own_account (MynaCall *call)
{
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);

  if (myna_call_get_session (call) == NULL || from == NULL || to == NULL
      || myna_jid_get_local (from) == NULL || !myna_jid_bare_equal (from, to))
    return NULL;
  return myna_jid_get_local (from);
}

/* The publish-options form of an <enable/>: NULL with *@bad unset when
 * there is none; with *@bad set when the child is not such a form.
 * Returns: (transfer full) (nullable) the form, serialised, type 'submit' */
static char *
cloud_notify_options (MynaStanza *enable, const char **bad)
{
  MynaStanza *form = NULL;
  g_autoptr(MynaStanza) copy = NULL;
  const char *form_type = NULL;
  char *text;

  *bad = NULL;
  for (guint i = 0; i < myna_stanza_get_n_children (enable); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (enable, i);
      if (myna_stanza_is_text (c))
        continue;
      if (form != NULL || g_strcmp0 (myna_stanza_get_name (c), "x") != 0
          || g_strcmp0 (myna_stanza_get_ns (c), NS_DATA) != 0)
        {
          *bad = "the only child of <enable/> may be a publish-options data form";
          return NULL;
        }
      form = c;
    }
  if (form == NULL)
    return NULL;
  for (guint i = 0; i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (form, i);
      if (!myna_stanza_is_text (field)
          && g_strcmp0 (myna_stanza_get_name (field), "field") == 0
          && g_strcmp0 (myna_stanza_get_attr (field, "var"), "FORM_TYPE") == 0)
        form_type = myna_stanza_get_child_text (field, "value");
    }
  if (g_strcmp0 (form_type, FORM_PUBLISH_OPTS) != 0)
    {
      *bad = "the form's FORM_TYPE must be " FORM_PUBLISH_OPTS;
      return NULL;
    }
  copy = myna_stanza_copy (form);
  myna_stanza_set_attr (copy, "type", "submit");
  text = myna_stanza_to_string (copy);
  if (strlen (text) > CLOUD_NOTIFY_MAX_FORM)
    {
      g_free (text);
      *bad = "the publish-options form is too large";
      return NULL;
    }
  return text;
}

/* <enable jid node>[<x/>]</enable>: adds or replaces the registration. */
static MynaResult
cloud_notify_enable (MynaCall *call, MynaStanza *iq, gpointer data)
{
  CloudNotify *self = data;
  const CloudNotifyConfig *cfg = myna_module_get_config (self->mod);
  const char *local = cloud_notify_own_account (call);
  MynaStanza *enable = myna_stanza_get_child (iq, "enable", NS_PUSH);
  const char *jid_s = myna_stanza_get_attr (enable, "jid");
  const char *node = myna_stanza_get_attr (enable, "node");
  g_autoptr(MynaJid) jid = jid_s != NULL ? myna_jid_parse (jid_s, NULL) : NULL;
  const char *bad = NULL;
  g_autofree char *options = NULL;
  CloudNotifyAccount *account;
  CloudNotifyReg *reg;
  CloudNotifyPending *p;
  g_autofree char *key = NULL;
  g_autofree char *value = NULL;
  guint drop = 0;

  if (local == NULL)
    return MYNA_PASS;           /* not to one's own account: the core answers */
  if (jid == NULL || node == NULL || *node == '\0')
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             jid_s == NULL ? "missing 'jid'" : jid == NULL ? "invalid 'jid'"
                                                                           : "missing 'node'");
      return MYNA_HANDLED;
    }
  options = cloud_notify_options (enable, &bad);
  if (bad != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", bad);
      return MYNA_HANDLED;
    }
  cloud_notify_has_registrations (self, local);          /* reads the set once */
  account = self->enabled != NULL ? cloud_notify_account (self, local) : NULL;
  if (account == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
      return MYNA_HANDLED;
    }

  key = cloud_notify_key (myna_jid_to_string (jid), node);
  reg = cloud_notify_find (account, key, NULL);
  if (reg == NULL)
    {
      reg = g_new0 (CloudNotifyReg, 1);
      reg->key = g_strdup (key);
      reg->jid = g_strdup (myna_jid_to_string (jid));
      reg->node = g_strdup (node);
      g_ptr_array_add (account->regs, reg);
    }
  g_free (reg->options);
  reg->options = g_steal_pointer (&options);
  reg->since = MAX (g_get_real_time (), reg->since + 1);
  reg->errors = 0;
  g_ptr_array_sort (account->regs, cloud_notify_reg_by_age);
  if (account->regs->len > (guint) cfg->max_registrations)
    drop = account->regs->len - (guint) cfg->max_registrations;

  value = cloud_notify_reg_serialise (reg);
  p = cloud_notify_pending_new (self, iq, myna_jid_bare_string (myna_call_get_from (call)),
                                1 + drop);
  g_info ("push enabled for %s@%s: %s node %s", local, cloud_notify_host_name (self),
          reg->jid, reg->node);
  cloud_notify_write (self, local, key, value, p);
  cloud_notify_mark (self, local, TRUE, p);
  /* Over the cap: the oldest go (the one just enabled is the newest). */
  for (guint i = 0; i < drop; i++)
    {
      CloudNotifyReg *old = account->regs->pdata[0];
      g_info ("push registration of %s@%s for %s node %s dropped: more than %" G_GINT64_FORMAT,
              local, cloud_notify_host_name (self), old->jid, old->node, cfg->max_registrations);
      cloud_notify_write (self, local, old->key, NULL, p);
      g_ptr_array_remove_index (account->regs, 0);
    }
  return MYNA_HANDLED;
}

/* <disable jid node?/>: removes that registration, or all of that app
 * server's without a node. */
static MynaResult
cloud_notify_disable (MynaCall *call, MynaStanza *iq, gpointer data)
{
  CloudNotify *self = data;
  const char *local = cloud_notify_own_account (call);
  MynaStanza *disable = myna_stanza_get_child (iq, "disable", NS_PUSH);
  const char *jid_s = myna_stanza_get_attr (disable, "jid");
  const char *node = myna_stanza_get_attr (disable, "node");
  g_autoptr(MynaJid) jid = jid_s != NULL ? myna_jid_parse (jid_s, NULL) : NULL;
  g_autoptr(GPtrArray) gone = NULL;
  CloudNotifyAccount *account;
  CloudNotifyPending *p;

  if (local == NULL)
    return MYNA_PASS;
  if (jid == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             jid_s == NULL ? "missing 'jid'" : "invalid 'jid'");
      return MYNA_HANDLED;
    }
  account = cloud_notify_account (self, local);
  if (account == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
      return MYNA_HANDLED;
    }
  gone = g_ptr_array_new_with_free_func ((GDestroyNotify) cloud_notify_reg_free);
  for (guint i = account->regs->len; i-- > 0;)
    {
      CloudNotifyReg *reg = account->regs->pdata[i];
      if (strcmp (reg->jid, myna_jid_to_string (jid)) == 0
          && (node == NULL || strcmp (reg->node, node) == 0))
        g_ptr_array_add (gone, g_ptr_array_steal_index (account->regs, i));
    }
  /* Nothing to remove is no error (XEP-0357 §6): the answer still waits
   * behind earlier writes, so it never overtakes an enable's. */
  if (gone->len == 0)
    {
      if (account->regs->len == 0)
        cloud_notify_mark (self, local, FALSE, NULL);   /* nothing to keep in memory */
      p = cloud_notify_pending_new (self, iq, myna_jid_bare_string (myna_call_get_from (call)),
                                    1);
      myna_storage_after_writes (cloud_notify_storage (self), cloud_notify_written, p,
                                 cloud_notify_pending_done);
      return MYNA_HANDLED;
    }
  p = cloud_notify_pending_new (self, iq, myna_jid_bare_string (myna_call_get_from (call)),
                                gone->len);
  for (guint i = 0; i < gone->len; i++)
    {
      CloudNotifyReg *reg = gone->pdata[i];
      g_info ("push disabled for %s@%s: %s node %s", local, cloud_notify_host_name (self),
              reg->jid, reg->node);
      cloud_notify_write (self, local, reg->key, NULL, p);
    }
  if (account->regs->len == 0)
    cloud_notify_mark (self, local, FALSE, p);          /* the last went */
  return MYNA_HANDLED;
}

/* ---- notifying ------------------------------------------------------------ */

/* A message the user should be told about, after Prosody's is_important:
 * an encrypted payload or a Jingle call proposal always; otherwise a
 * non-empty body, except in a groupchat subject change.  Headlines and
 * errors never. */
static gboolean
cloud_notify_important (MynaStanza *msg)
{
  static const char *const payloads[][2] = {
    { "encrypted", "eu.siacs.conversations.axolotl" },    /* OMEMO (legacy) */
    { "encrypted", "urn:xmpp:omemo:2" },                  /* OMEMO */
    { "x", "jabber:x:encrypted" },                        /* XEP-0027 */
    { "openpgp", "urn:xmpp:openpgp:0" },                  /* XEP-0373 */
    { "propose", "urn:xmpp:jingle-message:0" },           /* XEP-0353 */
  };
  const char *type = myna_stanza_get_type (msg);
  const char *body;

  if (g_strcmp0 (type, "error") == 0 || g_strcmp0 (type, "headline") == 0)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (payloads); i++)
    if (myna_stanza_get_child (msg, payloads[i][0], payloads[i][1]) != NULL)
      return TRUE;
  if (g_strcmp0 (type, "groupchat") == 0
      && myna_stanza_get_child (msg, "subject", NULL) != NULL)
    return FALSE;
  body = myna_stanza_get_child_text (msg, "body");
  return body != NULL && *body != '\0';
}

/* A message stream management routes again after a session it was queued
 * for ended (with a <delay/> from this host): the user was notified of it
 * while the session was hibernated. */
static gboolean
cloud_notify_rerouted (CloudNotify *self, MynaStanza *msg)
{
  MynaStanza *delay = myna_stanza_get_child (msg, "delay", NS_DELAY);

  return delay != NULL
         && g_strcmp0 (myna_stanza_get_attr (delay, "from"), cloud_notify_host_name (self)) == 0;
}

/* Whether the account has bound sessions and every one is hibernated. */
static gboolean
cloud_notify_all_hibernated (MynaHost *host, const char *local)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, local);

  for (guint i = 0; i < sessions->len; i++)
    if (!myna_session_is_hibernated (sessions->pdata[i]))
      return FALSE;
  return sessions->len > 0;
}

static void
cloud_notify_op_free (gpointer data)
{
  CloudNotifyOp *op = data;

  g_free (op->local);
  g_free (op->key);
  g_free (op);
}

/* The app server answered a publish (or did not in time). */
static void
cloud_notify_published (MynaModule *mod, MynaStanza *reply, const GError *error,
                        gpointer user_data)
{
  CloudNotifyOp *op = user_data;
  CloudNotify *self = op->self;
  const CloudNotifyConfig *cfg = myna_module_get_config (mod);
  CloudNotifyAccount *account = g_hash_table_lookup (self->accounts, op->local);
  CloudNotifyReg *reg = account != NULL ? cloud_notify_find (account, op->key, NULL) : NULL;
  MynaStanza *err = reply != NULL ? myna_stanza_get_child (reply, "error", NULL) : NULL;
  guint index = 0;

  if (reg == NULL)
    return;                     /* disabled meanwhile */
  if (error == NULL)
    {
      g_debug ("push to %s node %s for %s accepted", reg->jid, reg->node, op->local);
      reg->errors = 0;
      return;
    }
  if (g_error_matches (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED))
    {
      g_warning ("push to %s for %s@%s not sent: %s", reg->jid, op->local,
                 cloud_notify_host_name (self), error->message);
      return;                   /* our limit, not the app server's fault */
    }
  if (err != NULL && g_strcmp0 (myna_stanza_get_attr (err, "type"), "wait") == 0)
    {
      g_info ("push to %s node %s for %s@%s: temporary error %s (not counted)", reg->jid,
              reg->node, op->local, cloud_notify_host_name (self), error->message);
      return;
    }
  reg->errors++;
  g_info ("push to %s node %s for %s@%s failed: %s (%u of %" G_GINT64_FORMAT " errors)",
          reg->jid, reg->node, op->local, cloud_notify_host_name (self), error->message,
          reg->errors, cfg->max_errors);
  if ((gint64) reg->errors < cfg->max_errors)
    return;
  g_message ("push registration of %s@%s for %s node %s disabled after %u error(s), the "
             "last: %s", op->local, cloud_notify_host_name (self), reg->jid, reg->node,
             reg->errors, error->message);
  myna_kv_set (myna_module_get_storage (mod), cloud_notify_host_name (self), op->local,
               CLOUD_NOTIFY_STORE, reg->key, NULL, NULL, NULL, NULL);
  cloud_notify_find (account, op->key, &index);
  g_ptr_array_remove_index (account->regs, index);
  if (account->regs->len == 0)
    cloud_notify_mark (self, op->local, FALSE, NULL);
}

/* Publishes the summary of @msg to @reg's app server for @local. */
static void
cloud_notify_publish (CloudNotify *self, const char *local, CloudNotifyAccount *account,
                      CloudNotifyReg *reg, MynaStanza *msg)
{
  const CloudNotifyConfig *cfg = myna_module_get_config (self->mod);
  const char *body = myna_stanza_get_child_text (msg, "body");
  g_autofree char *count = g_strdup_printf ("%u", account->count);
  g_autofree char *account_jid = g_strdup_printf ("%s@%s", local, cloud_notify_host_name (self));
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='set' from='%s' to='%s'>"
        "<pubsub xmlns='" NS_PUBSUB "'>"
          "<publish node='%s'><item>"
            "<notification xmlns='" NS_PUSH "'>"
              "<x xmlns='" NS_DATA "' type='submit'>"
                "<field var='FORM_TYPE'><value>" FORM_SUMMARY "</value></field>"
                "<field var='message-count'><value>%s</value></field>"
                "<field var='last-message-sender'><value>%s</value></field>"
              "</x>"
            "</notification>"
          "</item></publish>"
        "</pubsub>"
      "</iq>",
      account_jid, reg->jid, reg->node, count, myna_stanza_get_from (msg) ?: "");
  MynaStanza *pubsub, *form;
  CloudNotifyOp *op;

  if (iq == NULL)
    return;                     /* a sender XML cannot carry: logged */
  pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB);
  form = myna_stanza_get_child (
      myna_stanza_get_child (
          myna_stanza_get_child (myna_stanza_get_child (pubsub, "publish", NULL), "item", NULL),
          "notification", NS_PUSH),
      "x", NS_DATA);
  if (cfg->include_body && body != NULL)
    {
      MynaStanza *field = myna_stanza_add_child (form, "field", NULL);
      myna_stanza_set_attr (field, "var", "last-message-body");
      myna_stanza_add_text_child (field, "value", body);
    }
  if (reg->options != NULL)
    {
      g_autoptr(MynaStanza) options = myna_stanza_parse (reg->options, -1, NULL);
      if (options != NULL)
        myna_stanza_append (myna_stanza_add_child (pubsub, "publish-options", NULL), options);
    }
  op = g_new0 (CloudNotifyOp, 1);
  op->self = self;
  op->local = g_strdup (local);
  op->key = g_strdup (reg->key);
  g_debug ("push to %s node %s for %s (%u message(s))", reg->jid, reg->node, local,
           account->count);
  myna_module_send_iq (self->mod, iq, (guint) cfg->timeout, cloud_notify_published, op,
                       cloud_notify_op_free);
}

/* message/bare and message/full at -50: notifies the account's app
 * servers when nobody reads; always passes (offline stores next). */
static MynaResult
cloud_notify_message (MynaCall *call, MynaStanza *msg, gpointer data)
{
  CloudNotify *self = data;
  MynaJid *to = myna_call_get_to (call);
  const char *local = to != NULL ? myna_jid_get_local (to) : NULL;
  const char *type = myna_stanza_get_type (msg);
  CloudNotifyAccount *account;
  gboolean offline;

  /* No `to`: a note to oneself from a session that is online. */
  if (local == NULL || myna_stanza_get_to (msg) == NULL || !cloud_notify_important (msg)
      || cloud_notify_rerouted (self, msg))
    return MYNA_PASS;
  offline = myna_server_count_recipients (myna_call_get_server (call), msg) == 0;
  if (!offline && !cloud_notify_all_hibernated (myna_call_get_host (call), local))
    {
      account = g_hash_table_lookup (self->accounts, local);
      if (account != NULL)
        account->count = 0;     /* the user is online and reads it */
      return MYNA_PASS;
    }
  /* Only what offline storage keeps wakes an offline device (a groupchat
   * message is not kept); a hibernated session gets everything queued. */
  if (offline && type != NULL && strcmp (type, "normal") != 0 && strcmp (type, "chat") != 0)
    return MYNA_PASS;
  if (!cloud_notify_has_registrations (self, local))
    {
      g_debug ("no push registrations for %s@%s: nothing published (%u account(s) kept)",
               local, cloud_notify_host_name (self), g_hash_table_size (self->accounts));
      return MYNA_PASS;
    }
  account = cloud_notify_account (self, local);
  if (account == NULL || account->regs->len == 0)
    return MYNA_PASS;
  account->count++;
  /* A publish can be answered at once (an error from a local app server
   * that is offline), and an error can drop the registration, or the
   * account's last: each registration is looked up again by its key. */
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < account->regs->len; i++)
    g_ptr_array_add (keys, g_strdup (((CloudNotifyReg *) account->regs->pdata[i])->key));
  for (guint i = 0; i < keys->len; i++)
    {
      account = g_hash_table_lookup (self->accounts, local);
      if (account == NULL)
        break;
      for (guint j = 0; j < account->regs->len; j++)
        {
          CloudNotifyReg *reg = account->regs->pdata[j];
          if (strcmp (reg->key, keys->pdata[i]) == 0)
            {
              cloud_notify_publish (self, local, account, reg, msg);
              break;
            }
        }
    }
  return MYNA_PASS;
}

/* presence/initial: the user is online again; the count starts over. */
static MynaResult
cloud_notify_initial (MynaCall *call, MynaStanza *presence, gpointer data)
{
  CloudNotify *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *jid = session != NULL ? myna_session_get_jid (session) : NULL;
  CloudNotifyAccount *account;

  if (jid == NULL || myna_jid_get_local (jid) == NULL)
    return MYNA_PASS;
  account = g_hash_table_lookup (self->accounts, myna_jid_get_local (jid));
  if (account != NULL)
    account->count = 0;
  return MYNA_PASS;
}

/* account/deleted: the core deletes the stored registrations with the
 * account; the copy in memory and its mark in CLOUD_NOTIFY_INDEX go too. */
static MynaResult
cloud_notify_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  CloudNotify *self = data;
  MynaJid *from = myna_call_get_from (call);

  if (from != NULL && myna_jid_get_local (from) != NULL)
    cloud_notify_mark (self, myna_jid_get_local (from), FALSE, NULL);
  return MYNA_PASS;
}

/* ---- module --------------------------------------------------------------- */

static void
cloud_notify_free (gpointer data)
{
  CloudNotify *self = data;

  g_hash_table_unref (self->accounts);
  g_clear_pointer (&self->enabled, g_hash_table_unref);
  g_free (self);
}

static gboolean
cloud_notify_load (MynaModule *mod, GError **error)
{
  CloudNotify *self = g_new0 (CloudNotify, 1);

  self->mod = mod;
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) cloud_notify_account_free);
  myna_module_set_data (mod, self, cloud_notify_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_SET, NS_PUSH, "enable", cloud_notify_enable, self,
                             NULL)
      || !myna_module_route_iq (mod, MYNA_IQ_SET, NS_PUSH, "disable", cloud_notify_disable,
                                self, NULL))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "{%s}enable or disable is already served by another module", NS_PUSH);
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, -50, cloud_notify_message, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, -50, cloud_notify_message, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_INITIAL, 0, cloud_notify_initial, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, cloud_notify_account_deleted, self,
                    NULL);
  return TRUE;
}

static const MynaConfigKey cloud_notify_config_keys[] = {
  MYNA_CONFIG_INT (CloudNotifyConfig, max_registrations, "5", 1, 100,
                   "app servers (jid, node) one account may enable; past it the "
                   "oldest registration is dropped"),
  MYNA_CONFIG_BOOL (CloudNotifyConfig, include_body, "false",
                    "send the message body to the app server (last-message-body); "
                    "it leaves the server in clear"),
  MYNA_CONFIG_INT (CloudNotifyConfig, max_errors, "1", 1, 1000,
                   "error answers (not type wait) or timeouts after which a "
                   "registration is disabled; a result resets the count"),
  MYNA_CONFIG_DURATION (CloudNotifyConfig, timeout, "30s", 1000, 300000,
                        "how long an app server has to answer a publish"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (cloud_notify,
  .version = "1.0",
  .description = "push notifications to app servers (XEP-0357)",
  .serves  = MYNA_STRV (NS_PUSH),
  .events  = MYNA_STRV (MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL,
                        MYNA_EVENT_PRESENCE_INITIAL, MYNA_EVENT_ACCOUNT_DELETED),
  .account_features = MYNA_STRV (NS_PUSH),
  .mode    = MYNA_MODULE_LAZY,
  .config  = cloud_notify_config_keys,
  .config_size = sizeof (CloudNotifyConfig),
  .load    = cloud_notify_load);
