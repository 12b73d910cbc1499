/* push: androidpn's NotificationManager — a back end posts a notification
 * over HTTP, the server sends it to each online resource of its
 * recipients as an IQ, and keeps, per recipient, whether it got there
 * (docs/push.md).
 *
 *   POST /api/v1/notifications      {"to": JID | [JID, …] | "*", "title",
 *                                    "message", "uri"?, "ttl"?} → 201
 *                                   {"id", "recipients"} + Location
 *   GET  /api/v1/notifications/ID   {"id", "title", "message", "uri",
 *                                    "created", "expires", "recipients":
 *                                    [{"jid", "state", "attempts", "at"}]}
 *   POST /notification.do           androidpn's console form: action=send,
 *                                   broadcast=Y|N, username, title,
 *                                   message, uri → the same 201 as above
 *
 * Both take the rest module's bearer token (rest/1, checked before a body
 * is read), answer errors as the rest API does ({"error": …}) and act on
 * one host: ?host=DOMAIN, or the recipients' domain, or the only host
 * with this module.
 *
 * The notification goes out as <iq type='set' from='HOST' to='FULL'
 * id='push:ID:N'><notification xmlns='androidpn:iq:notification'><id/>
 * <apiKey/><title/><message/><uri/></notification></iq>.  Per recipient
 * the state is `queued` until the client answers one of those IQs with a
 * result, or stream management acknowledges one (MYNA_EVENT_SM_ACKED),
 * then `delivered`; `expired` when its ttl ends first, or when a session
 * starts after max_attempts sends went unanswered.  Each send round —
 * the post to every resource online then (hibernated ones included: the
 * sm module keeps it for their resumption), or one new session's — is
 * one attempt; a recipient still queued gets it again when a session of
 * the account binds.  The IQ id names the notification, so answers and
 * acknowledgements are matched without a table of requests in flight,
 * across restarts too.
 *
 * Storage (kv, so states survive a restart): the notification under
 * (host, "", "push", ID) as JSON with its recipients' localparts; each
 * recipient's state under (host, LOCAL, "push", ID) as "STATE ATTEMPTS
 * AT" (AT in microseconds since the epoch).  A sweep each
 * `sweep_interval` (1m) marks the recipients of notifications past their
 * ttl expired — once per notification: the stored notification then says
 * "swept", so neither the next ticks nor a restart read its recipients
 * again — and deletes notifications `retention` after their ttl.  The
 * sweep reads no storage on a tick with nothing due (what it needs of
 * each notification, its expiry and whether it was swept, is kept in
 * memory), and a pass over a notification's recipients goes at most
 * `sweep_batch` recipients per main loop turn, so a broadcast to many
 * accounts never stalls the loop.  At most max_notifications are stored,
 * with at most max_recipients recipients each. */
#include <myna/module.h>
#include <myna/rest.h>
#include <myna/sm.h>
#include <json-glib/json-glib.h>

#include <stdio.h>
#include <string.h>

#define NS_NOTIFICATION "androidpn:iq:notification"
#define PUSH_PREFIX     MYNA_REST_PREFIX "/notifications"
#define PUSH_FORM_PATH  "/notification.do"
#define PUSH_STORE      "push"
#define PUSH_IQ_PREFIX  "push:"

/* The module's typed configuration ([module:push], host overrides), read
 * afresh at each use. */
typedef struct {
  char   *api_key;
  gint64  max_attempts;
  gint64  default_ttl;        /* milliseconds */
  gint64  retention;          /* milliseconds */
  gint64  max_notifications;
  gint64  max_recipients;
  gint64  sweep_interval;     /* milliseconds */
  gint64  sweep_batch;
} PushConfig;

typedef struct {
  MynaModule  *mod;
  MynaService *rest;
  GHashTable  *index;         /* id → PushIndexEntry*: every stored notification */
  GPtrArray   *starting;      /* full JIDs (char*) bound since the last tick */
  MynaTimer   *start_timer;   /* delivers to them once their bind answer is out */
  GQueue       jobs;          /* PushJob*: sweep passes under way, oldest first */
  MynaTimer   *job_timer;     /* runs the next batch of them */
  guint64      states_read;   /* recipient states the sweep read (for the log) */
  guint64      sweeps;        /* sweep ticks so far (for the log) */
} Push;

/* What the sweep knows of one stored notification, so that a tick reads
 * nothing from storage. */
typedef struct {
  gint64   expires;           /* µs since the epoch */
  gboolean swept;             /* its recipients were expired already */
  gboolean busy;              /* a PushJob is on it */
} PushIndexEntry;

/* A recipient's state, as stored. */
typedef enum { PUSH_QUEUED, PUSH_DELIVERED, PUSH_EXPIRED } PushState;

static const char *const push_state_names[] = { "queued", "delivered", "expired" };

/* What the instances share: the two routes, and who serves which host. */
static GPtrArray *push_instances;   /* Push* */
static guint      push_route_api, push_route_form;

static const PushConfig *
push_config (Push *self)
{
  return myna_module_get_config (self->mod);
}

static MynaHost *
push_host (Push *self)
{
  return myna_module_get_host (self->mod);
}

static const char *
push_host_name (Push *self)
{
  return myna_host_get_name (push_host (self));
}

static MynaStorage *
push_storage (Push *self)
{
  return myna_module_get_storage (self->mod);
}

/* ---- stored records -------------------------------------------------------------- */

/* One notification as stored (the recipients' states are apart). */
typedef struct {
  char       *id;
  char       *title;
  char       *message;
  char       *uri;          /* "" when none */
  gint64      created;      /* µs since the epoch */
  gint64      expires;
  gboolean    swept;        /* the expiry pass over its recipients ran */
  char      **recipients;   /* localparts */
} PushNote;

static void
push_note_free (PushNote *note)
{
  if (note == NULL)
    return;
  g_free (note->id);
  g_free (note->title);
  g_free (note->message);
  g_free (note->uri);
  g_strfreev (note->recipients);
  g_free (note);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PushNote, push_note_free)

static char *
push_note_to_json (const PushNote *note)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "title");
  json_builder_add_string_value (b, note->title);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, note->message);
  json_builder_set_member_name (b, "uri");
  json_builder_add_string_value (b, note->uri);
  json_builder_set_member_name (b, "created");
  json_builder_add_int_value (b, note->created);
  json_builder_set_member_name (b, "expires");
  json_builder_add_int_value (b, note->expires);
  if (note->swept)
    {
      json_builder_set_member_name (b, "swept");
      json_builder_add_boolean_value (b, TRUE);
    }
  json_builder_set_member_name (b, "recipients");
  json_builder_begin_array (b);
  for (guint i = 0; note->recipients[i] != NULL; i++)
    json_builder_add_string_value (b, note->recipients[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* Notification @id from its stored @text, or NULL (damaged: logged). */
static PushNote *
push_note_parse (const char *id, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonObject *o;
  JsonArray *to;
  PushNote *note;

  if (!json_parser_load_from_data (parser, text, -1, &error)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_warning ("notification %s is stored damaged: %s", id,
                 error != NULL ? error->message : "not an object");
      return NULL;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  to = json_object_get_array_member (o, "recipients");
  note = g_new0 (PushNote, 1);
  note->id = g_strdup (id);
  note->title = g_strdup (json_object_get_string_member_with_default (o, "title", ""));
  note->message = g_strdup (json_object_get_string_member_with_default (o, "message", ""));
  note->uri = g_strdup (json_object_get_string_member_with_default (o, "uri", ""));
  note->created = json_object_get_int_member_with_default (o, "created", 0);
  note->expires = json_object_get_int_member_with_default (o, "expires", 0);
  note->swept = json_object_get_boolean_member_with_default (o, "swept", FALSE);
  note->recipients = g_new0 (char *, (to != NULL ? json_array_get_length (to) : 0) + 1);
  for (guint i = 0; to != NULL && i < json_array_get_length (to); i++)
    note->recipients[i] = g_strdup (json_array_get_string_element (to, i));
  return note;
}

/* The stored notification @id, or NULL (absent or unreadable, logged). */
static PushNote *
push_note_load (Push *self, const char *id)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = myna_kv_get (push_storage (self), push_host_name (self), "",
                                       PUSH_STORE, id, &error);

  if (text == NULL)
    {
      if (error != NULL)
        g_warning ("notification %s not read: %s", id, error->message);
      return NULL;
    }
  return push_note_parse (id, text);
}

/* A recipient's state record. */
typedef struct {
  PushState state;
  guint     attempts;
  gint64    at;
} PushEntry;

static gboolean
push_entry_parse (const char *text, PushEntry *out)
{
  char name[16];
  guint attempts;
  gint64 at;

  if (text == NULL || sscanf (text, "%15s %u %" G_GINT64_FORMAT, name, &attempts, &at) != 3)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (push_state_names); i++)
    if (strcmp (name, push_state_names[i]) == 0)
      {
        *out = (PushEntry) { i, attempts, at };
        return TRUE;
      }
  return FALSE;
}

/* @local's state of notification @id: FALSE when none is stored. */
static gboolean
push_entry_load (Push *self, const char *local, const char *id, PushEntry *out)
{
  g_autofree char *text = myna_kv_get (push_storage (self), push_host_name (self), local,
                                       PUSH_STORE, id, NULL);

  return push_entry_parse (text, out);
}

static void
push_entry_store (Push *self, const char *local, const char *id, const PushEntry *e)
{
  g_autofree char *text = g_strdup_printf ("%s %u %" G_GINT64_FORMAT,
                                           push_state_names[e->state], e->attempts, e->at);

  myna_kv_set (push_storage (self), push_host_name (self), local, PUSH_STORE, id, text,
               NULL, NULL, NULL);
}

/* ---- delivery ----------------------------------------------------------------------- */

/* The IQ carrying @note to @full, send number @attempt. */
static MynaStanza *
push_iq (Push *self, const PushNote *note, const char *full, guint attempt)
{
  MynaStanza *iq = myna_stanza_new ("iq", MYNA_NS_CLIENT);
  MynaStanza *n;
  g_autofree char *id = g_strdup_printf (PUSH_IQ_PREFIX "%s:%u", note->id, attempt);

  myna_stanza_set_attr (iq, "type", "set");
  myna_stanza_set_attr (iq, "from", push_host_name (self));
  myna_stanza_set_attr (iq, "to", full);
  myna_stanza_set_attr (iq, "id", id);
  n = myna_stanza_add_child (iq, "notification", NS_NOTIFICATION);
  myna_stanza_add_text_child (n, "id", note->id);
  myna_stanza_add_text_child (n, "apiKey", push_config (self)->api_key);
  myna_stanza_add_text_child (n, "title", note->title);
  myna_stanza_add_text_child (n, "message", note->message);
  myna_stanza_add_text_child (n, "uri", note->uri);
  return iq;
}

/* Sends @note to @sessions (bound sessions of @local) as one more
 * attempt, unless its ttl is over or its attempts are spent: then marks
 * it expired.  @entry is the recipient's state (queued); stored again. */
static void
push_send_round (Push *self, const PushNote *note, const char *local, PushEntry *entry,
                 GPtrArray *sessions)
{
  gint64 now = g_get_real_time ();

  if (sessions->len == 0)
    return;
  if (now >= note->expires || entry->attempts >= (guint) push_config (self)->max_attempts)
    {
      g_debug ("notification %s to %s@%s expired (%s, %u sends)", note->id, local,
              push_host_name (self), now >= note->expires ? "ttl over" : "attempts spent",
              entry->attempts);
      *entry = (PushEntry) { PUSH_EXPIRED, entry->attempts, now };
      push_entry_store (self, local, note->id, entry);
      return;
    }
  entry->attempts++;
  entry->at = now;
  push_entry_store (self, local, note->id, entry);
  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      g_autoptr(MynaStanza) iq = push_iq (self, note, myna_jid_to_string (myna_session_get_jid (s)),
                                          entry->attempts);

      g_debug ("notification %s to %s (send %u)", note->id,
               myna_jid_to_string (myna_session_get_jid (s)), entry->attempts);
      myna_session_send (s, iq);
    }
}

/* Marks @local's copy of notification @id delivered (if still queued). */
static void
push_delivered (Push *self, const char *local, const char *id, const char *how)
{
  PushEntry e;

  if (!push_entry_load (self, local, id, &e) || e.state != PUSH_QUEUED)
    return;
  e.state = PUSH_DELIVERED;
  e.at = g_get_real_time ();
  push_entry_store (self, local, id, &e);
  g_debug ("notification %s delivered to %s@%s (%s)", id, local, push_host_name (self), how);
}

/* The notification id in an IQ id of ours ("push:ID:N"), or NULL.
 * Returns: (transfer full) (nullable) */
static char *
push_id_of (const char *iq_id)
{
  const char *colon;

  if (iq_id == NULL || !g_str_has_prefix (iq_id, PUSH_IQ_PREFIX))
    return NULL;
  iq_id += strlen (PUSH_IQ_PREFIX);
  colon = strchr (iq_id, ':');
  if (colon == NULL || colon == iq_id)
    return NULL;
  return g_strndup (iq_id, colon - iq_id);
}

/* iq/host and iq/bare: a client's answer to one of our IQs. */
static MynaResult
push_iq_answer (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Push *self = data;
  const char *type = myna_stanza_get_type (iq);
  g_autofree char *id = NULL;
  g_autoptr(MynaJid) from = NULL;

  if (g_strcmp0 (type, "result") != 0 && g_strcmp0 (type, "error") != 0)
    return MYNA_PASS;
  id = push_id_of (myna_stanza_get_id (iq));
  if (id == NULL)
    return MYNA_PASS;
  from = myna_jid_parse (myna_stanza_get_from (iq), NULL);
  if (from == NULL || myna_jid_get_local (from) == NULL
      || g_strcmp0 (myna_jid_get_domain (from), push_host_name (self)) != 0)
    return MYNA_PASS;
  if (strcmp (type, "result") == 0)
    push_delivered (self, myna_jid_get_local (from), id, "IQ result");
  else
    g_debug ("notification %s: %s answered an error; it stays queued", id,
            myna_jid_to_string (from));
  return MYNA_HANDLED;
}

/* sm/acked: the client acknowledged one of our IQs. */
static MynaResult
push_sm_acked (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Push *self = data;
  MynaSession *s = myna_call_get_session (call);
  g_autofree char *id = NULL;

  if (s == NULL || stanza == NULL || g_strcmp0 (myna_stanza_get_name (stanza), "iq") != 0
      || g_strcmp0 (myna_stanza_get_type (stanza), "set") != 0
      || myna_stanza_get_child (stanza, "notification", NS_NOTIFICATION) == NULL)
    return MYNA_PASS;
  id = push_id_of (myna_stanza_get_id (stanza));
  if (id != NULL && myna_session_get_jid (s) != NULL)
    push_delivered (self, myna_jid_get_local (myna_session_get_jid (s)), id,
                    "stream management ack");
  return MYNA_PASS;
}

/* Oldest first. */
static int
push_note_cmp (gconstpointer a, gconstpointer b)
{
  const PushNote *x = *(PushNote *const *) a, *y = *(PushNote *const *) b;

  return x->created < y->created ? -1 : x->created > y->created;
}

/* A session of @full's account started: what is queued for it goes to it. */
static void
push_session_start (Push *self, const char *full)
{
  g_autoptr(MynaJid) jid = myna_jid_parse (full, NULL);
  MynaSession *s = jid != NULL ? myna_host_find_session (push_host (self), jid) : NULL;
  g_autoptr(GHashTable) entries = NULL;
  g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func ((GDestroyNotify) push_note_free);
  g_autoptr(GPtrArray) one = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *local;
  GHashTableIter it;
  gpointer key, value;

  if (s == NULL || !myna_session_is_open (s))
    return;
  local = myna_jid_get_local (jid);
  entries = myna_kv_get_all (push_storage (self), push_host_name (self), local, PUSH_STORE,
                             &error);
  if (entries == NULL)
    {
      g_warning ("notifications of %s not read: %s", full, error->message);
      return;
    }
  g_hash_table_iter_init (&it, entries);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      PushEntry e;
      PushNote *note;

      if (!push_entry_parse (value, &e) || e.state != PUSH_QUEUED)
        continue;
      note = push_note_load (self, key);
      if (note != NULL)
        g_ptr_array_add (notes, note);
    }
  g_ptr_array_sort (notes, push_note_cmp);
  g_ptr_array_add (one, s);
  for (guint i = 0; i < notes->len; i++)
    {
      PushNote *note = notes->pdata[i];
      PushEntry e;

      if (push_entry_load (self, local, note->id, &e) && e.state == PUSH_QUEUED)
        push_send_round (self, note, local, &e, one);
    }
}

static void
push_start_tick (gpointer data)
{
  Push *self = data;
  g_autoptr(GPtrArray) starting = g_steal_pointer (&self->starting);

  self->starting = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < starting->len; i++)
    push_session_start (self, starting->pdata[i]);
}

/* session/bound: its queue goes out once the bind answer is on its way
 * (the event fires before the answer is written). */
static MynaResult
push_bound (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Push *self = data;
  MynaSession *s = myna_call_get_session (call);
  const char *full;

  if (s == NULL || myna_session_get_jid (s) == NULL)
    return MYNA_PASS;
  full = myna_jid_to_string (myna_session_get_jid (s));
  /* Once per full JID: a session replaced before the tick is served once. */
  for (guint i = 0; i < self->starting->len; i++)
    if (strcmp (self->starting->pdata[i], full) == 0)
      return MYNA_PASS;
  g_ptr_array_add (self->starting, g_strdup (full));
  if (!myna_timer_is_active (self->start_timer))
    myna_timer_start (self->start_timer, 0);
  return MYNA_PASS;
}

/* ---- expiry ------------------------------------------------------------------------------ */

/* A sweep pass under way over one notification's recipients: expiring
 * the queued ones, or (@drop) deleting it all. */
typedef struct {
  PushNote *note;
  gboolean  drop;
  guint     next;             /* the next recipient to do */
  guint     expired;          /* recipients it marked expired */
} PushJob;

static void
push_job_free (PushJob *job)
{
  push_note_free (job->note);
  g_free (job);
}

/* Remembers @note (just stored, or read at load) for the sweep. */
static void
push_index_add (Push *self, const PushNote *note)
{
  PushIndexEntry *entry = g_new0 (PushIndexEntry, 1);

  entry->expires = note->expires;
  entry->swept = note->swept;
  g_hash_table_replace (self->index, g_strdup (note->id), entry);
}

/* Deletes notification @id's own record (its recipients' are apart). */
static void
push_note_delete (Push *self, const char *id)
{
  myna_kv_set (push_storage (self), push_host_name (self), "", PUSH_STORE, id, NULL,
               NULL, NULL, NULL);
  g_hash_table_remove (self->index, id);
}

/* @job's pass reached its last recipient: the notification is marked
 * swept (stored, so a restart does not sweep it again) or deleted. */
static void
push_job_finish (Push *self, PushJob *job)
{
  PushIndexEntry *entry = g_hash_table_lookup (self->index, job->note->id);

  if (job->drop)
    {
      push_note_delete (self, job->note->id);
      g_debug ("notification %s deleted (retention over)", job->note->id);
      return;
    }
  job->note->swept = TRUE;
  {
    g_autofree char *json = push_note_to_json (job->note);
    myna_kv_set (push_storage (self), push_host_name (self), "", PUSH_STORE, job->note->id,
                 json, NULL, NULL, NULL);
  }
  if (entry != NULL)
    {
      entry->swept = TRUE;
      entry->busy = FALSE;
    }
  g_debug ("notification %s: expiry pass done, %u of %u recipient(s) expired",
           job->note->id, job->expired, g_strv_length (job->note->recipients));
}

/* Runs the sweep's passes, at most sweep_batch recipients per call; comes
 * back on the next main loop turn while some are left. */
static void
push_job_tick (gpointer data)
{
  Push *self = data;
  MynaStorage *storage = push_storage (self);
  const char *host = push_host_name (self);
  guint budget = (guint) push_config (self)->sweep_batch;
  gint64 now = g_get_real_time ();

  while (budget > 0 && !g_queue_is_empty (&self->jobs))
    {
      PushJob *job = g_queue_peek_head (&self->jobs);
      char **to = job->note->recipients;

      for (; budget > 0 && to[job->next] != NULL; job->next++, budget--)
        {
          PushEntry e;

          if (job->drop)
            myna_kv_set (storage, host, to[job->next], PUSH_STORE, job->note->id, NULL,
                         NULL, NULL, NULL);
          else
            {
              self->states_read++;
              if (push_entry_load (self, to[job->next], job->note->id, &e)
                  && e.state == PUSH_QUEUED)
                {
                  e.state = PUSH_EXPIRED;
                  e.at = now;
                  push_entry_store (self, to[job->next], job->note->id, &e);
                  job->expired++;
                }
            }
        }
      if (to[job->next] != NULL)
        {
          g_debug ("notification %s: %s pass at %u of %u recipient(s)", job->note->id,
                   job->drop ? "deletion" : "expiry", job->next, g_strv_length (to));
          break;
        }
      push_job_finish (self, g_queue_pop_head (&self->jobs));
      push_job_free (job);
    }
  if (!g_queue_is_empty (&self->jobs))
    myna_timer_start (self->job_timer, 0);
}

/* Queues a pass over notification @id (expiring, or with @drop deleting). */
static void
push_job_add (Push *self, const char *id, PushIndexEntry *entry, gboolean drop)
{
  PushNote *note = push_note_load (self, id);
  PushJob *job;

  if (note == NULL)
    {
      push_note_delete (self, id);      /* damaged (logged) or gone */
      return;
    }
  job = g_new0 (PushJob, 1);
  job->note = note;
  job->drop = drop;
  entry->busy = TRUE;
  g_queue_push_tail (&self->jobs, job);
}

/* Each sweep_interval: notifications past their ttl get their queued
 * recipients expired, once; `retention` later they go.  Reads only the
 * notifications due, each once per pass. */
static gboolean
push_sweep (MynaModule *mod, gpointer data)
{
  Push *self = data;
  gint64 now = g_get_real_time ();
  gint64 retention = push_config (self)->retention * 1000;
  g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) drop = g_array_new (FALSE, FALSE, sizeof (gboolean));
  GHashTableIter it;
  gpointer key, value;

  self->sweeps++;
  g_hash_table_iter_init (&it, self->index);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      PushIndexEntry *entry = value;
      gboolean gone = now >= entry->expires + retention;

      if (entry->busy || now < entry->expires || (entry->swept && !gone))
        continue;
      g_ptr_array_add (due, g_strdup (key));
      g_array_append_val (drop, gone);
    }
  for (guint i = 0; i < due->len; i++)
    {
      PushIndexEntry *entry = g_hash_table_lookup (self->index, due->pdata[i]);

      if (entry != NULL)
        push_job_add (self, due->pdata[i], entry, g_array_index (drop, gboolean, i));
    }
  g_debug ("push sweep %" G_GUINT64_FORMAT " of %s: %u stored, %u pass(es) under way, %"
           G_GUINT64_FORMAT " recipient state(s) read in all", self->sweeps,
           push_host_name (self), g_hash_table_size (self->index),
           g_queue_get_length (&self->jobs), self->states_read);
  if (!g_queue_is_empty (&self->jobs) && !myna_timer_is_active (self->job_timer))
    myna_timer_start (self->job_timer, 0);
  return TRUE;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void
push_respond_json (MynaHttpRequest *req, guint status, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, FALSE);

  myna_http_request_respond (req, status, "application/json", text, -1);
}

/* The instance a request acts on: ?host=, else @named (the recipients'
 * domain), else the only one; its token checked.  NULL once answered. */
static Push *
push_target (MynaHttpRequest *req, const char *named)
{
  const char *query = myna_http_request_get_query (req, "host");
  g_autofree char *domain = NULL;
  Push *found = NULL;

  if (query != NULL)
    {
      domain = myna_jid_prep_domain (query, NULL);
      if (domain == NULL)
        {
          myna_http_request_respond_error (req, 400, "?host= is not a valid domain");
          return NULL;
        }
      named = domain;
    }
  if (named == NULL)
    {
      if (push_instances->len == 1)
        found = push_instances->pdata[0];
      else
        {
          myna_http_request_respond_error (req, 400, "several hosts serve this API: "
                                           "name one with ?host=DOMAIN");
          return NULL;
        }
    }
  for (guint i = 0; found == NULL && i < push_instances->len; i++)
    if (strcmp (push_host_name (push_instances->pdata[i]), named) == 0)
      found = push_instances->pdata[i];
  if (found == NULL)
    {
      myna_http_request_respond_error (req, 404, "%s is not served here (no push module there)",
                                       named);
      return NULL;
    }
  if (!myna_rest_authorize (found->rest, req))
    return NULL;
  return found;
}

/* A 201, sent once the notification's records are durable. */
typedef struct {
  MynaHttpRequest *req;
  char            *json;
} PushAnswer;

static void
push_answer_durable (const GError *unused, gpointer data)
{
  PushAnswer *a = data;

  myna_http_request_respond (a->req, 201, "application/json", a->json, -1);
  myna_http_request_unref (a->req);
  g_free (a->json);
  g_free (a);
}

static char *push_new_id (void);

/* Stores and sends @n (parsed, recipients of @self's host) and answers
 * @req 201 once stored. */
static void
push_post (Push *self, MynaHttpRequest *req, const MynaApiNotification *n)
{
  const PushConfig *cfg = push_config (self);
  g_autoptr(PushNote) note = g_new0 (PushNote, 1);
  g_autoptr(GPtrArray) locals = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL, *location = NULL;
  MynaStorage *storage = push_storage (self);
  PushAnswer *answer;
  guint online = 0;

  if (g_hash_table_size (self->index) >= cfg->max_notifications)
    {
      g_warning ("notification refused: %u stored already (max_notifications)",
                 g_hash_table_size (self->index));
      myna_http_request_respond_error (req, 503, "too many notifications are stored (%u): "
                                       "try again once older ones expire",
                                       g_hash_table_size (self->index));
      return;
    }
  if (n->broadcast)
    {
      g_autoptr(GError) error = NULL;
      g_auto(GStrv) users = myna_account_list (storage, push_host_name (self), &error);

      if (users == NULL)
        {
          g_warning ("accounts of %s not listed: %s", push_host_name (self), error->message);
          myna_http_request_respond_error (req, 500, "the accounts could not be read");
          return;
        }
      for (guint i = 0; users[i] != NULL; i++)
        g_ptr_array_add (locals, g_strdup (users[i]));
    }
  else
    for (guint i = 0; i < n->to->len; i++)
      {
        MynaJid *jid = n->to->pdata[i];

        if (strcmp (myna_jid_get_domain (jid), push_host_name (self)) != 0)
          {
            myna_http_request_respond_error (req, 400, "all recipients must be accounts of %s",
                                             push_host_name (self));
            return;
          }
        if (!myna_account_exists (storage, push_host_name (self), myna_jid_get_local (jid)))
          {
            myna_http_request_respond_error (req, 404, "no account %s",
                                             myna_jid_to_string (jid));
            return;
          }
        g_ptr_array_add (locals, g_strdup (myna_jid_get_local (jid)));
      }
  if (locals->len > (guint) cfg->max_recipients)
    {
      myna_http_request_respond_error (req, 413, "%u recipients, over max_recipients (%"
                                       G_GINT64_FORMAT ")", locals->len, cfg->max_recipients);
      return;
    }
  g_ptr_array_add (locals, NULL);
  note->id = push_new_id ();
  note->title = g_strdup (n->title);
  note->message = g_strdup (n->message);
  note->uri = g_strdup (n->uri != NULL ? n->uri : "");
  note->created = g_get_real_time ();
  note->expires = note->created + (n->ttl > 0 ? n->ttl * G_USEC_PER_SEC
                                   : cfg->default_ttl * 1000);
  note->recipients = (char **) g_ptr_array_steal (locals, NULL);
  json = push_note_to_json (note);
  myna_kv_set (storage, push_host_name (self), "", PUSH_STORE, note->id, json, NULL, NULL, NULL);
  push_index_add (self, note);
  for (guint i = 0; note->recipients[i] != NULL; i++)
    {
      const char *local = note->recipients[i];
      g_autoptr(GPtrArray) sessions = myna_host_get_sessions (push_host (self), local);
      PushEntry e = { PUSH_QUEUED, 0, note->created };

      push_entry_store (self, local, note->id, &e);
      if (sessions->len > 0)
        online++;
      push_send_round (self, note, local, &e, sessions);
    }
  g_info ("notification %s posted by %s: %u recipient(s), %u online", note->id,
          myna_http_request_get_peer (req), g_strv_length (note->recipients), online);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, note->id);
  json_builder_set_member_name (b, "recipients");
  json_builder_add_int_value (b, g_strv_length (note->recipients));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  location = g_strdup_printf (PUSH_PREFIX "/%s", note->id);
  myna_http_request_set_header (req, "Location", location);
  answer = g_new0 (PushAnswer, 1);
  answer->req = myna_http_request_ref (req);
  answer->json = json_to_string (root, FALSE);
  myna_storage_after_writes (storage, push_answer_durable, answer, NULL);
}

/* A new notification id: 32 random hex digits. */
static char *
push_new_id (void)
{
  g_autofree char *uuid = g_uuid_string_random ();
  GString *id = g_string_sized_new (32);

  for (const char *p = uuid; *p != '\0'; p++)
    if (*p != '-')
      g_string_append_c (id, *p);
  return g_string_free (id, FALSE);
}

/* The single domain of @n's recipients, or NULL (a broadcast, or mixed). */
static const char *
push_recipients_domain (const MynaApiNotification *n)
{
  const char *domain;

  if (n->to == NULL || n->to->len == 0)
    return NULL;
  domain = myna_jid_get_domain (n->to->pdata[0]);
  for (guint i = 1; i < n->to->len; i++)
    if (strcmp (myna_jid_get_domain (n->to->pdata[i]), domain) != 0)
      return NULL;
  return domain;
}

static void
push_api_post (MynaHttpRequest *req)
{
  g_auto(MynaApiNotification) n = { 0 };
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *body = myna_http_request_get_body (req, &len);
  Push *self;

  if (!myna_api_parse_notification (body, len, &n, &error))
    {
      g_debug ("notification from %s refused: %s", myna_http_request_get_peer (req),
               error->message);
      myna_http_request_respond_error (req, len > MYNA_API_MAX_BODY ? 413 : 400, "%s",
                                       error->message);
      return;
    }
  self = push_target (req, push_recipients_domain (&n));
  if (self != NULL)
    push_post (self, req, &n);
}

static void
push_api_get (MynaHttpRequest *req, const char *segment)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(PushNote) note = NULL;
  Push *self = push_target (req, NULL);

  if (self == NULL)
    return;
  note = strlen (segment) <= 64 ? push_note_load (self, segment) : NULL;
  if (note == NULL)
    {
      myna_http_request_respond_error (req, 404, "no notification %s", segment);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, note->id);
  json_builder_set_member_name (b, "title");
  json_builder_add_string_value (b, note->title);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, note->message);
  json_builder_set_member_name (b, "uri");
  json_builder_add_string_value (b, note->uri);
  json_builder_set_member_name (b, "created");
  json_builder_add_int_value (b, note->created / G_USEC_PER_SEC);
  json_builder_set_member_name (b, "expires");
  json_builder_add_int_value (b, note->expires / G_USEC_PER_SEC);
  json_builder_set_member_name (b, "recipients");
  json_builder_begin_array (b);
  for (guint i = 0; note->recipients[i] != NULL; i++)
    {
      g_autofree char *jid = g_strdup_printf ("%s@%s", note->recipients[i], push_host_name (self));
      PushEntry e;

      /* A recipient whose account went has no state left: expired. */
      if (!push_entry_load (self, note->recipients[i], note->id, &e))
        e = (PushEntry) { PUSH_EXPIRED, 0, note->expires };
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "jid");
      json_builder_add_string_value (b, jid);
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, push_state_names[e.state]);
      json_builder_set_member_name (b, "attempts");
      json_builder_add_int_value (b, e.attempts);
      json_builder_set_member_name (b, "at");
      json_builder_add_int_value (b, e.at / G_USEC_PER_SEC);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  push_respond_json (req, 200, b);
}

static void
push_method_not_allowed (MynaHttpRequest *req, const char *allow)
{
  myna_http_request_set_header (req, "Allow", allow);
  myna_http_request_respond_error (req, 405, "%s is not allowed here (allowed: %s)",
                                   myna_http_request_get_method (req), allow);
}

/* Before a body is read: only a request with a host's token goes on. */
static void
push_check (MynaHttpRequest *req, gpointer unused)
{
  myna_rest_authorize_any (((Push *) push_instances->pdata[0])->rest, req);
}

/* /api/v1/notifications… */
static void
push_api_handle (MynaHttpRequest *req, gpointer unused)
{
  const char *sub = myna_http_request_get_subpath (req);
  const char *method = myna_http_request_get_method (req);

  if (!myna_rest_authorize_any (((Push *) push_instances->pdata[0])->rest, req))
    return;
  if (*sub == '\0')
    {
      if (g_strcmp0 (method, "POST") == 0)
        push_api_post (req);
      else
        push_method_not_allowed (req, "POST");
    }
  else if (sub[0] == '/' && sub[1] != '\0' && strchr (sub + 1, '/') == NULL)
    {
      if (g_strcmp0 (method, "GET") == 0)
        push_api_get (req, sub + 1);
      else
        push_method_not_allowed (req, "GET");
    }
  else
    myna_http_request_respond_error (req, 404, "no such resource");
}

/* A form field as text for XML: valid UTF-8 of XML characters, at most
 * @max bytes.  FALSE (answered 400) otherwise; *@out NULL when absent. */
static gboolean
push_form_text (MynaHttpRequest *req, GHashTable *form, const char *name, gsize max,
                gboolean required, const char **out)
{
  const char *value = g_hash_table_lookup (form, name);

  *out = NULL;
  if (value == NULL || (*value == '\0' && required))
    {
      if (!required)
        return TRUE;
      myna_http_request_respond_error (req, 400, "the field \"%s\" is required", name);
      return FALSE;
    }
  if (strlen (value) > max || !g_utf8_validate (value, -1, NULL) || !myna_api_text_is_xml (value))
    {
      myna_http_request_respond_error (req, 400, "the field \"%s\" is too long or not text", name);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* POST /notification.do, androidpn's console form. */
static void
push_form_handle (MynaHttpRequest *req, gpointer unused)
{
  g_auto(MynaApiNotification) n = { 0 };
  g_autoptr(GHashTable) form = NULL;
  g_autoptr(GError) error = NULL;
  const char *type = myna_http_request_get_header (req, "Content-Type");
  const char *action, *broadcast, *username, *title, *message, *uri;
  gsize len;
  const char *body;
  Push *self;

  if (!myna_rest_authorize_any (((Push *) push_instances->pdata[0])->rest, req))
    return;
  if (g_strcmp0 (myna_http_request_get_method (req), "POST") != 0)
    {
      push_method_not_allowed (req, "POST");
      return;
    }
  if (type == NULL || g_ascii_strncasecmp (type, "application/x-www-form-urlencoded", 33) != 0)
    {
      myna_http_request_respond_error (req, 415, "the body must be "
                                       "application/x-www-form-urlencoded");
      return;
    }
  body = myna_http_request_get_body (req, &len);
  if (memchr (body, '\0', len) != NULL
      || (form = g_uri_parse_params (body, len, "&", G_URI_PARAMS_WWW_FORM, &error)) == NULL)
    {
      myna_http_request_respond_error (req, 400, "the form is not valid: %s",
                                       error != NULL ? error->message : "a NUL byte");
      return;
    }
  if (!push_form_text (req, form, "action", 16, TRUE, &action)
      || !push_form_text (req, form, "broadcast", 1, FALSE, &broadcast)
      || !push_form_text (req, form, "username", 1023, FALSE, &username)
      || !push_form_text (req, form, "title", MYNA_API_MAX_TITLE, TRUE, &title)
      || !push_form_text (req, form, "message", MYNA_API_MAX_TEXT, TRUE, &message)
      || !push_form_text (req, form, "uri", MYNA_API_MAX_URI, FALSE, &uri))
    return;
  if (strcmp (action, "send") != 0)
    {
      myna_http_request_respond_error (req, 400, "the only action is \"send\"");
      return;
    }
  if (broadcast != NULL && strcmp (broadcast, "Y") != 0 && strcmp (broadcast, "N") != 0)
    {
      myna_http_request_respond_error (req, 400, "the field \"broadcast\" must be Y or N");
      return;
    }
  self = push_target (req, NULL);
  if (self == NULL)
    return;
  if (g_strcmp0 (broadcast, "Y") == 0)
    n.broadcast = TRUE;
  else
    {
      g_autoptr(MynaJid) jid = username != NULL
                               ? myna_jid_new (username, push_host_name (self), NULL, NULL) : NULL;
      if (jid == NULL)
        {
          myna_http_request_respond_error (req, 400, "the field \"username\" must be a username "
                                           "when broadcast is not Y");
          return;
        }
      n.to = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
      g_ptr_array_add (n.to, g_steal_pointer (&jid));
    }
  n.title = g_strdup (title);
  n.message = g_strdup (message);
  n.uri = g_strdup (uri);
  push_post (self, req, &n);
}

/* ---- module ------------------------------------------------------------------------------- */

static void
push_free (gpointer data)
{
  Push *self = data;

  myna_timer_free (self->start_timer);
  myna_timer_free (self->job_timer);
  g_queue_clear_full (&self->jobs, (GDestroyNotify) push_job_free);
  g_clear_pointer (&self->index, g_hash_table_unref);
  g_ptr_array_unref (self->starting);
  g_free (self);
}

static gboolean
push_load (MynaModule *mod, GError **error)
{
  Push *self = g_new0 (Push, 1);
  MynaServer *server = myna_module_get_server (mod);
  g_autoptr(GHashTable) all = NULL;
  GHashTableIter it;
  gpointer key, value;

  self->mod = mod;
  self->starting = g_ptr_array_new_with_free_func (g_free);
  self->start_timer = myna_timer_new (push_start_tick, self);
  self->index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_queue_init (&self->jobs);
  self->job_timer = myna_timer_new (push_job_tick, self);
  myna_module_set_data (mod, self, push_free);
  self->rest = myna_module_use (mod, MYNA_REST_SERVICE, 1, error);
  if (self->rest == NULL)
    return FALSE;
  all = myna_kv_get_all (myna_module_get_storage (mod), push_host_name (self), "", PUSH_STORE,
                         error);
  if (all == NULL)
    return FALSE;
  /* What the sweep needs of each notification, read once. */
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autoptr(PushNote) note = push_note_parse (key, value);

      if (note != NULL)
        push_index_add (self, note);
      else
        myna_kv_set (myna_module_get_storage (mod), push_host_name (self), "", PUSH_STORE, key,
                     NULL, NULL, NULL, NULL);
    }
  if (push_instances == NULL)
    {
      push_route_api = myna_http_route_add (server, PUSH_PREFIX, push_api_handle, NULL, NULL);
      push_route_form = myna_http_route_add (server, PUSH_FORM_PATH, push_form_handle, NULL, NULL);
      if (push_route_api == 0 || push_route_form == 0)
        {
          g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                               "the HTTP route " PUSH_PREFIX " or " PUSH_FORM_PATH " is taken");
          return FALSE;
        }
      myna_http_route_set_check (server, push_route_api, push_check);
      myna_http_route_set_check (server, push_route_form, push_check);
      push_instances = g_ptr_array_new ();
    }
  g_ptr_array_add (push_instances, self);
  myna_module_hook (mod, MYNA_EVENT_SESSION_BOUND, 0, push_bound, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_HOST, 0, push_iq_answer, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_BARE, 0, push_iq_answer, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_SM_ACKED, 0, push_sm_acked, self, NULL);
  myna_module_add_timer (mod, (guint) push_config (self)->sweep_interval, push_sweep, self,
                         NULL);
  push_sweep (mod, self);
  g_info ("host %s: push notifications on %s and %s (%u stored)", push_host_name (self),
          PUSH_PREFIX, PUSH_FORM_PATH, g_hash_table_size (self->index));
  return TRUE;
}

static void
push_unload (MynaModule *mod)
{
  Push *self = myna_module_get_data (mod);

  if (push_instances != NULL)
    {
      g_ptr_array_remove (push_instances, self);
      if (push_instances->len == 0)
        {
          myna_http_route_remove (myna_module_get_server (mod), push_route_api);
          myna_http_route_remove (myna_module_get_server (mod), push_route_form);
          push_route_api = push_route_form = 0;
          g_clear_pointer (&push_instances, g_ptr_array_unref);
        }
    }
}

static const MynaConfigKey push_config_keys[] = {
  MYNA_CONFIG_STRING (PushConfig, api_key, "1234567890",
                      "the <apiKey/> of each notification (androidpn clients "
                      "compare it with theirs)"),
  MYNA_CONFIG_INT (PushConfig, max_attempts, "3", 1, 100,
                   "sends of one notification to one recipient at most "
                   "(each a round: the post, or one new session); then expired"),
  MYNA_CONFIG_DURATION (PushConfig, default_ttl, "168h", 1000, 720 * 3600000LL,
                        "how long a notification without \"ttl\" waits for "
                        "its recipients"),
  MYNA_CONFIG_DURATION (PushConfig, retention, "24h", 0, 720 * 3600000LL,
                        "how long a notification stays readable after its ttl"),
  MYNA_CONFIG_INT (PushConfig, max_notifications, "10000", 1, 10000000,
                   "notifications stored at most per host; more are refused "
                   "with 503"),
  MYNA_CONFIG_INT (PushConfig, max_recipients, "100000", 1, 10000000,
                   "recipients of one notification at most (a broadcast "
                   "counts every account)"),
  MYNA_CONFIG_DURATION (PushConfig, sweep_interval, "1m", 50, 3600000,
                        "how often notifications past their ttl are looked for "
                        "(their queued recipients expired, once) and those past "
                        "retention deleted"),
  MYNA_CONFIG_INT (PushConfig, sweep_batch, "1000", 1, 1000000,
                   "recipients the sweep handles per main loop turn (a pass "
                   "over a large broadcast goes on at the next turn)"),
  MYNA_CONFIG_END,
};

/* Eager: it serves HTTP routes and hooks session starts. */
MYNA_MODULE_DEFINE (push,
  .version = "1.0",
  .description = "androidpn-style push notifications over the REST API "
                 "(needs the rest module and its token)",
  .mode    = MYNA_MODULE_EAGER,
  .config  = push_config_keys,
  .config_size = sizeof (PushConfig),
  .uses    = MYNA_STRV ("rest/1"),
  .load    = push_load,
  .unload  = push_unload);
