/* delivery.c: the last step of routing — handing a stanza to local
 * sessions (RFC 6121 §8.5) — fan-out to many full JIDs, and the MynaCall
 * helpers modules reply with.  A stanza going to several sessions is
 * serialised once; in a fan-out each recipient's to='…' is spliced into
 * those bytes. */
#include "private.h"
#include "stanza-build.h"

#include <string.h>

/* Writes @bytes (@stanza serialised) to every session in @targets that
 * MYNA_EVENT_STANZA_TO_CLIENT lets have it, as myna_session_send() would. */
static void
deliver_bytes (MynaServer *server, GPtrArray *targets, MynaStanza *stanza, GString *bytes)
{
  for (guint i = 0; i < targets->len; i++)
    {
      if (myna_session_to_client_taken (targets->pdata[i], stanza))
        continue;
      myna_session_send_raw (targets->pdata[i], bytes->str, (gssize) bytes->len);
      server->stanzas_out++;
    }
}

/* Available resources with the highest non-negative priority. */
static void
pick_for_message (GPtrArray *sessions, GPtrArray *out)
{
  int best = -1;

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      int p = myna_session_get_priority (s);
      if (!myna_session_is_available (s) || p < 0)
        continue;
      if (p > best)
        {
          g_ptr_array_set_size (out, 0);
          best = p;
        }
      if (p == best)
        g_ptr_array_add (out, s);
    }
}

/* The sessions @stanza goes to now (RFC 6121 §8.5), as
 * myna_server_deliver() hands it to them.
 * Returns: (transfer container) of borrowed MynaSession* */
static GPtrArray *
recipients (MynaServer *server, MynaStanza *stanza)
{
  GPtrArray *targets = g_ptr_array_new ();
  g_autoptr(MynaJid) to = myna_jid_parse (myna_stanza_get_to (stanza) ?: "", NULL);
  if (to == NULL || myna_jid_get_local (to) == NULL)
    return targets;
  MynaHost *host = myna_server_get_host (server, myna_jid_get_domain (to));
  /* A component has no sessions: its modules deliver what they serve. */
  if (host == NULL || host->component)
    return targets;

  const char *name = myna_stanza_get_name (stanza);
  if (myna_jid_get_resource (to) != NULL)
    {
      MynaSession *s = myna_host_find_session (host, to);
      if (s != NULL)
        g_ptr_array_add (targets, s);
      else if (strcmp (name, "message") == 0)
        {
          /* RFC 6121 §8.5.3.2.1: a message to an unavailable resource of an
           * existing account is treated as sent to the bare JID. */
          g_autoptr(GPtrArray) all = myna_host_get_sessions (host, myna_jid_get_local (to));
          const char *type = myna_stanza_get_type (stanza);
          if (type == NULL || strcmp (type, "chat") == 0 || strcmp (type, "normal") == 0)
            pick_for_message (all, targets);
        }
    }
  else
    {
      g_autoptr(GPtrArray) all = myna_host_get_sessions (host, myna_jid_get_local (to));
      if (strcmp (name, "message") == 0)
        pick_for_message (all, targets);
      else if (strcmp (name, "presence") == 0)
        for (guint i = 0; i < all->len; i++)
          {
            if (myna_session_is_available (all->pdata[i]))
              g_ptr_array_add (targets, all->pdata[i]);
          }
    }
  return targets;
}

guint
myna_server_count_recipients (MynaServer *server, MynaStanza *stanza)
{
  g_return_val_if_fail (server != NULL && stanza != NULL, 0);

  g_autoptr(GPtrArray) targets = recipients (server, stanza);
  return targets->len;
}

guint
myna_server_deliver (MynaServer *server, MynaStanza *stanza)
{
  g_return_val_if_fail (server != NULL && stanza != NULL, 0);

  g_autoptr(GPtrArray) targets = recipients (server, stanza);
  if (targets->len == 0)
    return 0;
  g_autoptr(GString) bytes = g_string_sized_new (256);
  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, bytes);
  deliver_bytes (server, targets, stanza, bytes);
  return targets->len;
}

/* ---- fan-out --------------------------------------------------------------- */

/* A new top element with @src's name, namespace and attributes but `to`,
 * holding references to @src's children (not copies). */
static MynaStanza *
fanout_top (MynaStanza *src)
{
  MynaStanza *top = myna_stanza_new (myna_stanza_get_name (src), myna_stanza_get_ns (src));

  for (guint i = 0; i < myna_stanza_get_n_attrs (src); i++)
    {
      const char *ns, *name, *value;

      myna_stanza_get_attr_nth (src, i, &ns, &name, &value);
      if (ns == NULL && strcmp (name, "to") == 0)
        continue;
      myna_stanza_set_attr_ns (top, ns, name, value);
    }
  for (guint i = 0; i < myna_stanza_get_n_children (src); i++)
    myna_stanza_append (top, myna_stanza_get_child_nth (src, i));
  return top;
}

/* Whether @view, made by fanout_top() from @src and given a `to`, is
 * still @src's top level plus that `to`: an inbound handler may have
 * added or removed a child or an attribute. */
static gboolean
fanout_top_intact (MynaStanza *view, MynaStanza *src)
{
  guint n = myna_stanza_get_n_children (src);
  gboolean src_has_to = myna_stanza_get_attr (src, "to") != NULL;

  if (myna_stanza_get_n_children (view) != n
      || myna_stanza_get_n_attrs (view) != myna_stanza_get_n_attrs (src) + (src_has_to ? 0 : 1))
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (myna_stanza_get_child_nth (view, i) != myna_stanza_get_child_nth (src, i))
      return FALSE;
  return TRUE;
}

/* Where a `to` attribute goes in @bytes, a stanza serialised without one:
 * at the end of its start tag, where myna_stanza_set_attr() would have
 * put it (attribute values escape '>', so the first one ends the tag). */
static gsize
fanout_splice_point (const GString *bytes)
{
  const char *gt = memchr (bytes->str, '>', bytes->len);
  gsize at = gt != NULL ? (gsize) (gt - bytes->str) : bytes->len;

  if (at > 0 && bytes->str[at - 1] == '/')
    at--;
  return at;
}

guint
myna_server_fanout (MynaServer *server, MynaStanza *stanza, GPtrArray *to,
                    GPtrArray *unavailable)
{
  g_return_val_if_fail (server != NULL && stanza != NULL && to != NULL, 0);
  g_return_val_if_fail (!myna_stanza_is_text (stanza), 0);

  /* The recipients' handlers see @view with their own `to`; it is a copy
   * of the top element only, so the caller's stanza stays as it was. */
  g_autoptr(MynaStanza) view = fanout_top (stanza);
  g_autoptr(GString) bytes = g_string_sized_new (512);
  myna_stanza_serialize (view, MYNA_NS_CLIENT, bytes);
  gsize at = fanout_splice_point (bytes);
  g_autoptr(GString) out = g_string_sized_new (bytes->len + 128);
  g_autoptr(MynaJid) from = myna_jid_parse (myna_stanza_get_from (stanza) ?: "", NULL);
  const char *event = myna_event_for_stanza (myna_stanza_get_name (stanza), MYNA_TARGET_FULL);
  guint handed = 0;

  for (guint i = 0; i < to->len; i++)
    {
      MynaJid *jid = to->pdata[i];
      const char *jid_string = myna_jid_to_string (jid);
      MynaHost *host = myna_jid_get_local (jid) != NULL && myna_jid_get_resource (jid) != NULL
                         ? myna_server_get_host (server, myna_jid_get_domain (jid))
                         : NULL;

      if (host == NULL || host->component || event == NULL
          || strcmp (myna_stanza_get_name (stanza), "iq") == 0)
        {
          /* Not a session of ours: routed like any stanza, as a copy of
           * its own (routing may keep and edit it). */
          g_autoptr(MynaStanza) copy = myna_stanza_copy (view);
          myna_stanza_set_attr (copy, "to", jid_string);
          myna_server_route (server, copy);
          continue;
        }
      MynaSession *session = myna_host_find_session (host, jid);
      if (session == NULL)
        {
          if (unavailable != NULL)
            g_ptr_array_add (unavailable, jid);
          continue;
        }
      handed++;
      myna_stanza_set_attr (view, "to", jid_string);
      /* As routing would: the recipient's inbound hooks first (blocking
       * refuses what comes from a JID its user blocked), then the
       * to-client chain (CSI holds, stream management keeps). */
      MynaCall call = { server, host, NULL, from, jid };
      gboolean taken = myna_router_fire (server->router, host, event, &call, view) == MYNA_HANDLED;
      gboolean intact = fanout_top_intact (view, stanza);
      if (!taken)
        taken = myna_session_to_client_taken (session, view);
      if (!taken && !intact)
        {
          /* A hook edited it for this recipient: its own serialisation. */
          g_string_truncate (out, 0);
          myna_stanza_serialize (view, MYNA_NS_CLIENT, out);
          myna_session_send_raw (session, out->str, (gssize) out->len);
          server->stanzas_out++;
        }
      /* A handler kept it (stream management does, until acknowledged):
       * it is theirs now, with this recipient's `to`.  One that was edited
       * is not reused either. */
      if (myna_stanza_is_shared (view) || !intact)
        {
          MynaStanza *fresh = fanout_top (stanza);
          myna_stanza_unref (view);
          view = fresh;
        }
      if (taken || !intact)
        continue;
      g_string_truncate (out, 0);
      g_string_append_len (out, bytes->str, (gssize) at);
      g_string_append (out, " to='");
      myna_xml_escape_append (out, jid_string, -1);
      g_string_append_c (out, '\'');
      g_string_append_len (out, bytes->str + at, (gssize) (bytes->len - at));
      myna_session_send_raw (session, out->str, (gssize) out->len);
      server->stanzas_out++;
    }
  return handed;
}

void
myna_server_route (MynaServer *server, MynaStanza *stanza)
{
  g_return_if_fail (server != NULL && stanza != NULL);

  g_autoptr(MynaJid) from = myna_jid_parse (myna_stanza_get_from (stanza) ?: "", NULL);
  MynaCall call = { server, NULL, NULL, from, NULL };

  if (from != NULL)
    call.host = myna_server_get_host (server, myna_jid_get_domain (from));
  myna_router_route (server->router, &call, stanza);
}

/* ---- calls ---------------------------------------------------------------- */

MynaServer *
myna_call_get_server (MynaCall *call)
{
  return call->server;
}

MynaHost *
myna_call_get_host (MynaCall *call)
{
  return call->host;
}

MynaSession *
myna_call_get_session (MynaCall *call)
{
  return call->session;
}

MynaJid *
myna_call_get_from (MynaCall *call)
{
  return call->from;
}

MynaJid *
myna_call_get_to (MynaCall *call)
{
  return call->to;
}

void
myna_call_send (MynaCall *call, MynaStanza *stanza)
{
  g_return_if_fail (call != NULL && stanza != NULL);

  /* To the originating session directly when it is still there; replies
   * from the server carry the server's or the addressee's JID as from. */
  if (myna_stanza_get_from (stanza) == NULL && call->to != NULL)
    myna_stanza_set_attr (stanza, "from", myna_jid_to_string (call->to));
  if (call->session != NULL)
    myna_session_send (call->session, stanza);
  else
    myna_server_route (call->server, stanza);
}

void
myna_call_reply_result (MynaCall *call, MynaStanza *iq)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  myna_call_send (call, reply);
}

void
myna_call_reply (MynaCall *call, MynaStanza *iq, const char *payload_format, ...)
{
  va_list args;

  g_return_if_fail (call != NULL && iq != NULL);

  va_start (args, payload_format);
  g_autoptr(MynaStanza) reply = myna_stanza_build_result_valist (iq, payload_format, args);
  va_end (args);
  if (reply != NULL)
    myna_call_send (call, reply);
  else
    myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
}

void
myna_call_reply_error (MynaCall *call, MynaStanza *stanza, MynaErrorType type,
                       const char *condition, const char *text)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_error (stanza, type, condition, text);

  /* The error comes from the entity the stanza was addressed to. */
  if (myna_stanza_get_to (stanza) == NULL)
    myna_stanza_set_attr (reply, "from", NULL);
  myna_call_send (call, reply);
}

MynaResult
myna_host_fire_event (MynaHost *host, const char *event, MynaCall *call,
                      MynaStanza *stanza)
{
  g_return_val_if_fail (host != NULL && event != NULL, MYNA_PASS);
  return myna_router_fire (host->server->router, host, event, call, stanza);
}

void
myna_host_account_deleted (MynaHost *host, MynaJid *bare)
{
  GHashTableIter it;
  gpointer value;

  g_return_if_fail (host != NULL && bare != NULL);
  g_autoptr(MynaJid) who = myna_jid_get_bare (bare);
  MynaCall *call = myna_call_new_for (host, who);

  myna_host_fire_event (host, MYNA_EVENT_ACCOUNT_DELETED, call, NULL);
  myna_call_free (call);
  /* Then every component domain, whose modules keep per-JID state too. */
  g_hash_table_iter_init (&it, host->server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaHost *component = value;

      if (!component->component)
        continue;
      call = myna_call_new_for (component, who);
      myna_host_fire_event (component, MYNA_EVENT_ACCOUNT_DELETED, call, NULL);
      myna_call_free (call);
    }
}

MynaCall *
myna_call_new (MynaHost *host, MynaSession *session)
{
  g_return_val_if_fail (host != NULL, NULL);

  MynaCall *call = g_new0 (MynaCall, 1);
  call->server = host->server;
  call->host = host;
  call->session = session;
  call->from = session != NULL && myna_session_get_jid (session) != NULL
                 ? myna_jid_ref (myna_session_get_jid (session))
                 : myna_jid_new (NULL, host->name, NULL, NULL);
  return call;
}

MynaCall *
myna_call_new_for (MynaHost *host, MynaJid *from)
{
  g_return_val_if_fail (host != NULL && from != NULL, NULL);

  MynaCall *call = g_new0 (MynaCall, 1);
  call->server = host->server;
  call->host = host;
  call->from = myna_jid_ref (from);
  return call;
}

void
myna_call_free (MynaCall *call)
{
  if (call == NULL)
    return;
  if (call->from != NULL)
    myna_jid_unref (call->from);
  g_free (call);
}
