/* push_webhook: a XEP-0357 app server as a third-party Myna module.  It
 * serves a component domain ([component:push.localhost] with
 * `module = push_webhook`), takes the pubsub publishes a server's push
 * module (cloud_notify) sends there, answers each (a result, or a stanza
 * error for a malformed one), and turns it into an HTTP POST of JSON to
 * `webhook_url`:
 *
 *   {"node": "…", "message_count": 3, "last_sender": "juliet@…/balcony",
 *    "last_body": "…" (when the summary has it),
 *    "publish_options": {"secret": "…", …}}
 *
 * the shape of a relay to a mobile push service (FCM, APNs, UnifiedPush).
 * Built only through the installed SDK (pkg-config 'myna'), with libsoup 3
 * and json-glib of its own: the SDK exposes no libsoup type.
 *
 * Delivery: requests run asynchronously on the main loop (a SoupSession,
 * at most `max_in_flight` at once, each bounded by `timeout`); a
 * connection failure, a timeout or a 5xx answer is retried after
 * `initial_delay`, doubling each time up to `max_delay`, for at most
 * `max_attempts` attempts in all; any other answer is final.  Posts
 * waiting (to go or to retry) are bounded by `max_queue`: past it the
 * oldest is dropped with a warning.  Each outcome is logged.
 *
 * Unloading: libsoup's callbacks come from the main loop after the call
 * that started them, so a request in flight at unload would call into a
 * closed .so.  The module therefore keeps its code loaded for the life of
 * the process (RTLD_NODELETE on itself at load); at unload it cancels what
 * is in flight and drops what waits, and the state the callbacks touch
 * lives until the last of them has run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* dladdr, RTLD_NODELETE */
#endif
#include <myna/module.h>

#include <dlfcn.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#define NS_PUBSUB     "http://jabber.org/protocol/pubsub"
#define NS_PUSH       "urn:xmpp:push:0"
#define NS_DATA       "jabber:x:data"
#define FORM_SUMMARY  "urn:xmpp:push:summary"

/* The typed configuration ([module:push_webhook], or push_webhook.KEY in
 * the component's section). */
typedef struct {
  char  *webhook_url;
  char  *token;
  gint64 max_attempts;
  gint64 initial_delay;        /* ms */
  gint64 max_delay;            /* ms */
  gint64 timeout;              /* ms */
  gint64 max_queue;
  gint64 max_in_flight;
} WebhookConfig;

/* The delivery state: shared by the instance and the requests in flight,
 * freed with the last of them (after an unload too). */
typedef struct {
  gint          refs;
  gboolean      dead;          /* unloaded: finish what runs, start nothing */
  char         *domain;        /* for logs */
  SoupSession  *session;
  GCancellable *cancellable;
  GQueue        queue;         /* WebhookJob*, waiting to go or to retry, oldest first */
  guint         in_flight;
  guint         timer;         /* GSource id of the next retry, or 0 */
  guint64       serial;
  /* The configuration in use, refreshed at each publish. */
  char         *url;
  char         *token;
  guint         max_attempts, max_queue, max_in_flight;
  gint64        initial_delay, max_delay;
} Webhook;

/* One POST to make, and its attempts so far. */
typedef struct {
  Webhook     *hook;
  guint64      seq;            /* arrival order */
  char        *node;
  GBytes      *body;
  guint        attempts;
  gint64       not_before;     /* monotonic µs */
  SoupMessage *msg;            /* while in flight */
} WebhookJob;

static void webhook_pump (Webhook *hook);

static Webhook *
webhook_ref (Webhook *hook)
{
  hook->refs++;
  return hook;
}

static void
webhook_unref (Webhook *hook)
{
  if (--hook->refs > 0)
    return;
  g_object_unref (hook->session);
  g_object_unref (hook->cancellable);
  g_free (hook->domain);
  g_free (hook->url);
  g_free (hook->token);
  g_free (hook);
}

static void
webhook_job_free (WebhookJob *job)
{
  g_clear_object (&job->msg);
  g_bytes_unref (job->body);
  g_free (job->node);
  g_free (job);
}

/* Takes the current configuration snapshot (module context only). */
static void
webhook_configure (Webhook *hook, MynaModule *mod)
{
  const WebhookConfig *cfg = myna_module_get_config (mod);

  g_free (hook->url);
  hook->url = g_strdup (cfg->webhook_url);
  g_free (hook->token);
  hook->token = cfg->token != NULL && *cfg->token != '\0' ? g_strdup (cfg->token) : NULL;
  hook->max_attempts = (guint) cfg->max_attempts;
  hook->max_queue = (guint) cfg->max_queue;
  hook->max_in_flight = (guint) cfg->max_in_flight;
  hook->initial_delay = cfg->initial_delay;
  hook->max_delay = cfg->max_delay;
  soup_session_set_timeout (hook->session, (guint) ((cfg->timeout + 999) / 1000));
}

/* ---- the stanza side ------------------------------------------------------ */

/* The values of a data form's fields (FORM_TYPE left out) as a JSON
 * object: a string per field, an array for a field of several values. */
static void
webhook_form_to_json (JsonBuilder *b, MynaStanza *form)
{
  json_builder_begin_object (b);
  for (guint i = 0; form != NULL && i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (form, i);
      const char *var = myna_stanza_is_text (field) ? NULL
                                                    : myna_stanza_get_attr (field, "var");
      g_autoptr(GPtrArray) values = g_ptr_array_new ();

      if (var == NULL || g_strcmp0 (myna_stanza_get_name (field), "field") != 0
          || strcmp (var, "FORM_TYPE") == 0)
        continue;
      for (guint k = 0; k < myna_stanza_get_n_children (field); k++)
        {
          MynaStanza *v = myna_stanza_get_child_nth (field, k);
          if (!myna_stanza_is_text (v) && g_strcmp0 (myna_stanza_get_name (v), "value") == 0)
            g_ptr_array_add (values, (gpointer) (myna_stanza_get_text (v) ?: ""));
        }
      json_builder_set_member_name (b, var);
      if (values->len == 1)
        json_builder_add_string_value (b, values->pdata[0]);
      else
        {
          json_builder_begin_array (b);
          for (guint k = 0; k < values->len; k++)
            json_builder_add_string_value (b, values->pdata[k]);
          json_builder_end_array (b);
        }
    }
  json_builder_end_object (b);
}

/* The value of field @var of @form, or NULL. */
static const char *
webhook_field (MynaStanza *form, const char *var)
{
  for (guint i = 0; form != NULL && i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (form, i);
      if (!myna_stanza_is_text (field) && g_strcmp0 (myna_stanza_get_name (field), "field") == 0
          && g_strcmp0 (myna_stanza_get_attr (field, "var"), var) == 0)
        return myna_stanza_get_child_text (field, "value");
    }
  return NULL;
}

/* The JSON body for a publish to @node with @summary (nullable) and
 * @options (nullable).  Returns: (transfer full) */
static GBytes *
webhook_body (const char *node, MynaStanza *summary, MynaStanza *options)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  const char *count = webhook_field (summary, "message-count");
  const char *sender = webhook_field (summary, "last-message-sender");
  const char *body = webhook_field (summary, "last-message-body");
  gint64 n = 0;
  char *text;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "node");
  json_builder_add_string_value (b, node);
  if (count != NULL && g_ascii_string_to_signed (count, 10, 0, G_MAXINT64, &n, NULL))
    {
      json_builder_set_member_name (b, "message_count");
      json_builder_add_int_value (b, n);
    }
  if (sender != NULL)
    {
      json_builder_set_member_name (b, "last_sender");
      json_builder_add_string_value (b, sender);
    }
  if (body != NULL)
    {
      json_builder_set_member_name (b, "last_body");
      json_builder_add_string_value (b, body);
    }
  json_builder_set_member_name (b, "publish_options");
  webhook_form_to_json (b, options);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  return g_bytes_new_take (text, strlen (text));
}

/* The only form (jabber:x:data) child of @parent, or NULL. */
static MynaStanza *
webhook_form (MynaStanza *parent)
{
  return parent != NULL ? myna_stanza_get_child (parent, "x", NS_DATA) : NULL;
}

/* Queues a POST, dropping the oldest waiting one when the queue is full. */
static void
webhook_enqueue (Webhook *hook, const char *node, GBytes *body)
{
  WebhookJob *job = g_new0 (WebhookJob, 1);

  job->hook = hook;
  job->seq = ++hook->serial;
  job->node = g_strdup (node);
  job->body = body;
  job->not_before = g_get_monotonic_time ();
  while (hook->queue.length > 0 && hook->queue.length + hook->in_flight >= hook->max_queue)
    {
      WebhookJob *old = g_queue_pop_head (&hook->queue);
      g_warning ("%s: %u notification(s) waiting: the oldest (node %s, %u attempt(s)) dropped",
                 hook->domain, hook->max_queue, old->node, old->attempts);
      webhook_job_free (old);
    }
  if (hook->in_flight >= hook->max_queue)
    {
      g_warning ("%s: %u notification(s) in flight: one for node %s dropped", hook->domain,
                 hook->in_flight, node);
      webhook_job_free (job);
      return;
    }
  g_queue_push_tail (&hook->queue, job);
  webhook_pump (hook);
}

/* IQ set {pubsub}pubsub on the domain: a publish of a push notification. */
static MynaResult
webhook_publish (MynaCall *call, MynaStanza *iq, gpointer user_data)
{
  MynaModule *mod = user_data;
  Webhook *hook = myna_module_get_data (mod);
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB);
  MynaStanza *publish = myna_stanza_get_child (pubsub, "publish", NS_PUBSUB);
  const char *node = publish != NULL ? myna_stanza_get_attr (publish, "node") : NULL;
  MynaStanza *item = publish != NULL ? myna_stanza_get_child (publish, "item", NS_PUBSUB) : NULL;
  MynaStanza *notification = item != NULL ? myna_stanza_get_child (item, "notification", NS_PUSH)
                                          : NULL;
  MynaStanza *summary = webhook_form (notification);
  MynaStanza *options = webhook_form (myna_stanza_get_child (pubsub, "publish-options",
                                                             NS_PUBSUB));
  MynaJid *from = myna_call_get_from (call);
  const char *why = NULL;

  if (publish == NULL)
    why = "not a publish";
  else if (node == NULL || *node == '\0')
    why = "the publish has no node";
  else if (notification == NULL)
    why = "the item is no {" NS_PUSH "}notification";
  else if (summary != NULL && g_strcmp0 (webhook_field (summary, "FORM_TYPE"), FORM_SUMMARY) != 0)
    why = "the notification's form is not " FORM_SUMMARY;
  if (why != NULL)
    {
      g_info ("%s: publish from %s refused: %s", hook->domain,
              from != NULL ? myna_jid_to_string (from) : "?", why);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", why);
      return MYNA_HANDLED;
    }
  myna_call_reply_result (call, iq);
  g_debug ("%s: publish from %s for node %s", hook->domain,
           from != NULL ? myna_jid_to_string (from) : "?", node);
  webhook_configure (hook, mod);
  webhook_enqueue (hook, node, webhook_body (node, summary, options));
  return MYNA_HANDLED;
}

/* ---- the HTTP side -------------------------------------------------------- */

static void webhook_send (Webhook *hook, WebhookJob *job);

static gboolean
webhook_timer_fired (gpointer data)
{
  Webhook *hook = data;

  hook->timer = 0;
  webhook_pump (hook);
  return G_SOURCE_REMOVE;
}

/* Starts every waiting POST that is due while fewer than max_in_flight
 * run, then arms the timer for the next one due. */
static void
webhook_pump (Webhook *hook)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;

  if (hook->dead)
    return;
  for (GList *l = hook->queue.head; l != NULL;)
    {
      GList *next_link = l->next;
      WebhookJob *job = l->data;

      if (job->not_before <= now && hook->in_flight < hook->max_in_flight)
        {
          g_queue_delete_link (&hook->queue, l);
          webhook_send (hook, job);
        }
      else if (job->not_before > now)
        next = MIN (next, job->not_before);
      l = next_link;
    }
  if (hook->timer != 0)
    g_source_remove (hook->timer);
  hook->timer = 0;
  if (next != G_MAXINT64)
    hook->timer = g_timeout_add ((guint) ((next - now + 999) / 1000), webhook_timer_fired, hook);
}

/* Orders waiting jobs by arrival. */
static gint
webhook_job_by_seq (gconstpointer a, gconstpointer b, G_GNUC_UNUSED gpointer unused)
{
  const WebhookJob *ja = a, *jb = b;

  return ja->seq < jb->seq ? -1 : ja->seq > jb->seq;
}

/* After a failed attempt (@what says how): again later, or the end. */
static void
webhook_retry (Webhook *hook, WebhookJob *job, const char *what)
{
  gint64 delay = hook->initial_delay;

  if (job->attempts >= hook->max_attempts)
    {
      g_warning ("%s: notification for node %s given up after %u attempt(s): %s",
                 hook->domain, job->node, job->attempts, what);
      webhook_job_free (job);
      return;
    }
  for (guint i = 1; i < job->attempts && delay < hook->max_delay; i++)
    delay *= 2;
  delay = MIN (delay, hook->max_delay);
  g_message ("%s: notification for node %s: %s; attempt %u of %u in %" G_GINT64_FORMAT " ms",
             hook->domain, job->node, what, job->attempts + 1, hook->max_attempts, delay);
  job->not_before = g_get_monotonic_time () + delay * 1000;
  g_queue_insert_sorted (&hook->queue, job, webhook_job_by_seq, NULL);
}

static void
webhook_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  WebhookJob *job = data;
  Webhook *hook = job->hook;
  g_autoptr(GError) error = NULL;
  /* The answer's body says nothing the status does not. */
  GBytes *answer = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_clear_pointer (&answer, g_bytes_unref);
  guint status = soup_message_get_status (job->msg);

  hook->in_flight--;
  if (hook->dead)
    {
      webhook_job_free (job);
      webhook_unref (hook);
      return;
    }
  if (error != NULL)
    {
      g_autofree char *what = g_strdup_printf ("no answer (%s)", error->message);
      webhook_retry (hook, job, what);
    }
  else if (status >= 200 && status < 300)
    {
      g_info ("%s: notification for node %s posted (HTTP %u, attempt %u)", hook->domain,
              job->node, status, job->attempts);
      webhook_job_free (job);
    }
  else if (status >= 500)
    {
      g_autofree char *what = g_strdup_printf ("HTTP %u", status);
      webhook_retry (hook, job, what);
    }
  else
    {
      g_warning ("%s: notification for node %s refused by the webhook: HTTP %u %s",
                 hook->domain, job->node, status, soup_message_get_reason_phrase (job->msg) ?: "");
      webhook_job_free (job);
    }
  webhook_pump (hook);
  webhook_unref (hook);
}

static void
webhook_send (Webhook *hook, WebhookJob *job)
{
  g_clear_object (&job->msg);
  job->msg = soup_message_new (SOUP_METHOD_POST, hook->url);
  job->attempts++;
  if (job->msg == NULL)
    {
      g_warning ("%s: webhook_url '%s' is not a URL: notification for node %s dropped",
                 hook->domain, hook->url, job->node);
      webhook_job_free (job);
      return;
    }
  soup_message_set_request_body_from_bytes (job->msg, "application/json", job->body);
  if (hook->token != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", hook->token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (job->msg),
                                    "Authorization", bearer);
    }
  hook->in_flight++;
  soup_session_send_and_read_async (hook->session, job->msg, G_PRIORITY_DEFAULT,
                                    hook->cancellable, webhook_sent, job);
  webhook_ref (hook);
}

/* ---- module --------------------------------------------------------------- */

/* Keeps this .so mapped for the life of the process (see the top). */
static void
webhook_pin_code (void)
{
  Dl_info info;

  if (dladdr ((void *) webhook_pin_code, &info) == 0 || info.dli_fname == NULL
      || dlopen (info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL)
    g_warning ("push_webhook cannot keep its code loaded: do not unload it while "
               "notifications are in flight");
}

static gboolean
webhook_load (MynaModule *mod, GError **error)
{
  const WebhookConfig *cfg = myna_module_get_config (mod);
  g_autoptr(GUri) uri = g_uri_parse (cfg->webhook_url ?: "", G_URI_FLAGS_NONE, NULL);
  Webhook *hook;

  if (cfg->webhook_url == NULL || *cfg->webhook_url == '\0')
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                           "webhook_url is not set");
      return FALSE;
    }
  if (uri == NULL || (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0
                      && g_strcmp0 (g_uri_get_scheme (uri), "https") != 0))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                   "webhook_url '%s' is not an http or https URL", cfg->webhook_url);
      return FALSE;
    }
  webhook_pin_code ();
  hook = g_new0 (Webhook, 1);
  hook->refs = 1;
  hook->domain = g_strdup (myna_host_get_name (myna_module_get_host (mod)));
  hook->session = soup_session_new ();
  hook->cancellable = g_cancellable_new ();
  g_queue_init (&hook->queue);
  webhook_configure (hook, mod);
  myna_module_set_data (mod, hook, NULL);
  if (!myna_module_route_iq (mod, MYNA_IQ_SET, NS_PUBSUB, "pubsub", webhook_publish, mod, NULL))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "{%s}pubsub is already served on %s", NS_PUBSUB, hook->domain);
      webhook_unref (hook);
      myna_module_set_data (mod, NULL, NULL);
      return FALSE;
    }
  myna_module_add_identity (mod, "pubsub", "service", "Push notifications to a webhook");
  g_info ("%s: push notifications go to %s", hook->domain, cfg->webhook_url);
  return TRUE;
}

/* Cancels what is in flight (its callbacks finish later, on the state
 * they hold) and drops what waits. */
static void
webhook_unload (MynaModule *mod)
{
  Webhook *hook = myna_module_get_data (mod);

  if (hook == NULL)
    return;
  hook->dead = TRUE;
  if (hook->timer != 0)
    g_source_remove (hook->timer);
  hook->timer = 0;
  g_cancellable_cancel (hook->cancellable);
  if (hook->queue.length > 0 || hook->in_flight > 0)
    g_warning ("%s: unloaded with %u notification(s) waiting and %u in flight: dropped",
               hook->domain, hook->queue.length, hook->in_flight);
  g_queue_clear_full (&hook->queue, (GDestroyNotify) webhook_job_free);
  webhook_unref (hook);
}

MYNA_MODULE_DEFINE (push_webhook,
  .version = "1.0",
  .description = "a XEP-0357 app server: push notifications published to its "
                 "domain are POSTed as JSON to a webhook",
  .features = MYNA_STRV (NS_PUSH),
  .mode    = MYNA_MODULE_EAGER,     /* a component's module opens at start anyway */
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_STRING (WebhookConfig, webhook_url, "",
                          "where each notification is POSTed (http or https); "
                          "required"),
      MYNA_CONFIG_STRING (WebhookConfig, token, "",
                          "sent as 'Authorization: Bearer TOKEN' when set"),
      MYNA_CONFIG_INT (WebhookConfig, max_attempts, "5", 1, 100,
                       "attempts per notification, the first included"),
      MYNA_CONFIG_DURATION (WebhookConfig, initial_delay, "1s", 10, 3600000,
                            "wait before the first retry; doubled for each next one"),
      MYNA_CONFIG_DURATION (WebhookConfig, max_delay, "5m", 10, 86400000,
                            "the longest wait between two attempts"),
      MYNA_CONFIG_DURATION (WebhookConfig, timeout, "10s", 1000, 300000,
                            "how long one attempt may take (connect, send, answer)"),
      MYNA_CONFIG_INT (WebhookConfig, max_queue, "1000", 1, 1000000,
                       "notifications waiting or in flight; past it the oldest "
                       "waiting one is dropped"),
      MYNA_CONFIG_INT (WebhookConfig, max_in_flight, "4", 1, 64,
                       "requests to the webhook at once")),
  .config_size = sizeof (WebhookConfig),
  .load    = webhook_load,
  .unload  = webhook_unload);
