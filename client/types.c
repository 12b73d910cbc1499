/* types.c: the boxed records of the client API — messages, notifications
 * and roster items — and the error quarks. */
#include "private.h"

#include <string.h>

G_DEFINE_QUARK (myna-client-store-error-quark, myna_client_store_error)
G_DEFINE_QUARK (myna-client-error-quark, myna_client_error)

/* The enums' GTypes: properties and signals carry them, so GI languages
 * see names, not numbers. */
G_DEFINE_ENUM_TYPE (MynaClientState, myna_client_state,
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_STOPPED, "stopped"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_CONNECTING, "connecting"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_CONNECTED, "connected"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_AUTHENTICATED, "authenticated"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_DISCONNECTED, "disconnected"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_STATE_RECONNECTING, "reconnecting"))

G_DEFINE_ENUM_TYPE (MynaClientTls, myna_client_tls,
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_TLS_STARTTLS, "starttls"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_TLS_DIRECT, "direct"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_TLS_NONE, "none"))

G_DEFINE_ENUM_TYPE (MynaClientError, myna_client_error,
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_NOT_CONNECTED, "not-connected"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_TIMEOUT, "timeout"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_STANZA, "stanza"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_NOT_AUTHORIZED, "not-authorized"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_REGISTRATION, "registration"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_TLS, "tls"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_STREAM, "stream"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_CLOSED, "closed"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_ERROR_STOPPED, "stopped"))

G_DEFINE_ENUM_TYPE (MynaClientDirection, myna_client_direction,
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_DIRECTION_IN, "in"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_DIRECTION_OUT, "out"))

G_DEFINE_ENUM_TYPE (MynaClientMessageState, myna_client_message_state,
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_QUEUED, "queued"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_SENT, "sent"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_ACKED, "acked"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_DELIVERED, "delivered"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_RECEIVED, "received"),
  G_DEFINE_ENUM_VALUE (MYNA_CLIENT_MESSAGE_FAILED, "failed"))

MynaClientMessage *
myna_client_message_copy (const MynaClientMessage *m)
{
  g_return_val_if_fail (m != NULL, NULL);
  MynaClientMessage *c = g_new0 (MynaClientMessage, 1);

  c->id = g_strdup (m->id);
  c->direction = m->direction;
  c->peer = g_strdup (m->peer);
  c->body = g_strdup (m->body);
  c->type = g_strdup (m->type);
  c->stanza_id = g_strdup (m->stanza_id);
  c->state = m->state;
  c->timestamp = m->timestamp;
  return c;
}

void
myna_client_message_free (MynaClientMessage *m)
{
  if (m == NULL)
    return;
  g_free (m->id);
  g_free (m->peer);
  g_free (m->body);
  g_free (m->type);
  g_free (m->stanza_id);
  g_free (m);
}

G_DEFINE_BOXED_TYPE (MynaClientMessage, myna_client_message, myna_client_message_copy,
                     myna_client_message_free)

MynaClientNotification *
myna_client_notification_copy (const MynaClientNotification *n)
{
  g_return_val_if_fail (n != NULL, NULL);
  MynaClientNotification *c = g_new0 (MynaClientNotification, 1);

  c->id = g_strdup (n->id);
  c->from = g_strdup (n->from);
  c->api_key = g_strdup (n->api_key);
  c->title = g_strdup (n->title);
  c->message = g_strdup (n->message);
  c->uri = g_strdup (n->uri);
  c->timestamp = n->timestamp;
  return c;
}

void
myna_client_notification_free (MynaClientNotification *n)
{
  if (n == NULL)
    return;
  g_free (n->id);
  g_free (n->from);
  g_free (n->api_key);
  g_free (n->title);
  g_free (n->message);
  g_free (n->uri);
  g_free (n);
}

G_DEFINE_BOXED_TYPE (MynaClientNotification, myna_client_notification,
                     myna_client_notification_copy, myna_client_notification_free)

MynaClientRosterItem *
myna_client_roster_item_copy (const MynaClientRosterItem *i)
{
  g_return_val_if_fail (i != NULL, NULL);
  MynaClientRosterItem *c = g_new0 (MynaClientRosterItem, 1);

  c->jid = g_strdup (i->jid);
  c->name = g_strdup (i->name);
  c->subscription = g_strdup (i->subscription);
  c->ask = g_strdup (i->ask);
  c->groups = g_strdupv (i->groups);
  return c;
}

void
myna_client_roster_item_free (MynaClientRosterItem *i)
{
  if (i == NULL)
    return;
  g_free (i->jid);
  g_free (i->name);
  g_free (i->subscription);
  g_free (i->ask);
  g_strfreev (i->groups);
  g_free (i);
}

G_DEFINE_BOXED_TYPE (MynaClientRosterItem, myna_client_roster_item,
                     myna_client_roster_item_copy, myna_client_roster_item_free)

void
myna_conn_sm_clear (MynaClientSm *sm)
{
  g_free (sm->id);
  g_free (sm->location);
  g_queue_clear_full (&sm->unacked, (GDestroyNotify) myna_stanza_unref);
  memset (sm, 0, sizeof *sm);
}
