/* test-im: instant messaging and presence (RFC 6121) against a real mynad
 * with the roster and presence modules — roster get/set/remove with pushes
 * and versioning, the RFC's errors for bad roster sets, the subscription
 * handshake both ways, pre-approval, pending requests redelivered at
 * login, presence broadcasts and probes, unavailable presence when a
 * connection drops, directed presence, and priorities.
 *
 * Expectations match whole stanzas: a stanza matches when it carries every
 * given substring, and a match is consumed.  Absence is checked after a
 * ping round trip on each side, so whatever the server would have sent is
 * in the buffer by then. */
#include "mynad-harness.h"

#include <myna/storage.h>

#include <sys/socket.h>

#define MODULES "disco;ping;version;auth;bind;roster;presence"

typedef struct {
  Mynad d;
} Fixture;

static guint sync_serial;

/* @extra: more [global] keys, or NULL. */
static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (extra != NULL ? (const char *) extra : "", "\n",
                                       MYNAD_PLAIN_AUTH, NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* ---- matching whole stanzas ------------------------------------------------ */

/* The next start of a top-level stanza at or after @s, or NULL. */
static const char *
next_stanza (const char *s)
{
  static const char *const starts[] = { "<iq ", "<iq>", "<presence", "<message" };
  const char *best = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (starts); i++)
    {
      const char *p = strstr (s, starts[i]);
      if (p != NULL && (best == NULL || p < best))
        best = p;
    }
  return best;
}

static gboolean
segment_complete (const char *seg, gsize len, const char *name)
{
  g_autofree char *close = g_strdup_printf ("</%s>", name);
  g_autofree char *trimmed = g_strstrip (g_strndup (seg, len));

  return g_str_has_suffix (trimmed, "/>") || g_str_has_suffix (trimmed, close);
}

/* Finds a complete <@name/> stanza holding every needle: its offset and
 * length, or FALSE. */
static gboolean
find_stanza (Client *c, const char *name, const char *const *needles, gsize *off, gsize *len)
{
  g_autofree char *open = g_strconcat ("<", name, NULL);
  const char *buf = c->in->str;

  for (const char *p = next_stanza (buf); p != NULL;)
    {
      const char *q = next_stanza (p + 1);
      gsize n = q != NULL ? (gsize) (q - p) : strlen (p);
      char after = p[strlen (open)];
      gboolean ok = g_str_has_prefix (p, open) && (after == ' ' || after == '>' || after == '/')
                    && segment_complete (p, n, name);

      if (ok)
        {
          g_autofree char *seg = g_strndup (p, n);
          for (guint i = 0; needles[i] != NULL && ok; i++)
            ok = strstr (seg, needles[i]) != NULL;
        }
      if (ok)
        {
          *off = (gsize) (p - buf);
          *len = n;
          return TRUE;
        }
      p = q;
    }
  return FALSE;
}

static GPtrArray *
collect_needles (const char *first, va_list ap)
{
  GPtrArray *needles = g_ptr_array_new ();

  for (const char *n = first; n != NULL; n = va_arg (ap, const char *))
    g_ptr_array_add (needles, (gpointer) n);
  g_ptr_array_add (needles, NULL);
  return needles;
}

/* Waits (bounded) for a stanza <@name/> holding every needle; consumes it. */
G_GNUC_NULL_TERMINATED static gboolean
expect_stanza (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gsize off, len;

  while (!find_stanza (c, name, (const char *const *) needles->pdata, &off, &len))
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (c->eof || left <= 0 || !client_read (c, left))
        {
          g_test_message ("expected <%s/> with %s…; got: %s", name, first, c->in->str);
          return FALSE;
        }
    }
  g_string_erase (c->in, (gssize) off, (gssize) len);
  return TRUE;
}

/* Waits (bounded) for a stanza <@name/> holding every one of @needles
 * (NULL-terminated); consumes it.  Returns: (transfer full) its text, or
 * NULL. */
static char *
take_stanza (Client *c, const char *name, const char *const *needles)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gsize off, len;

  while (!find_stanza (c, name, needles, &off, &len))
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (c->eof || left <= 0 || !client_read (c, left))
        {
          g_test_message ("expected <%s/> with %s…; got: %.2000s", name, needles[0], c->in->str);
          return NULL;
        }
    }
  char *seg = g_strndup (c->in->str + off, len);
  g_string_erase (c->in, (gssize) off, (gssize) len);
  return seg;
}

/* Whether a stanza <@name/> holding every needle is already there. */
G_GNUC_NULL_TERMINATED static gboolean
has_stanza (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  gsize off, len;

  return find_stanza (c, name, (const char *const *) needles->pdata, &off, &len);
}

/* A ping round trip: everything the server sent before is in the buffer. */
static void
sync_client (Client *c)
{
  g_autofree char *id = g_strdup_printf ("sync-%u", ++sync_serial);
  g_autofree char *ping = g_strdup_printf ("<iq type='get' id='%s' to='localhost'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>", id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);

  client_send (c, ping);
  g_assert_true (expect_stanza (c, "iq", needle, NULL));
}

/* Syncs and forgets everything received so far. */
static void
drain (Client *c)
{
  sync_client (c);
  g_string_truncate (c->in, 0);
}

/* ---- logging in ------------------------------------------------------------------ */

static Client *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return c;
}

static void
roster_get (Client *c)
{
  client_send (c, "<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='rg'", "type='result'", NULL));
}

/* Sends available presence with @extra inside and waits for its echo. */
static void
go_available (Client *c, const char *user, const char *resource, const char *extra)
{
  g_autofree char *p = g_strdup_printf ("<presence>%s</presence>", extra != NULL ? extra : "");
  g_autofree char *from = g_strdup_printf ("from='%s@localhost/%s'", user, resource);

  client_send (c, p);
  g_assert_true (expect_stanza (c, "presence", from, NULL));
}

/* Logs in, asks for the roster and goes available (status = user). */
static Client *
login_available (Fixture *f, const char *user, const char *resource)
{
  Client *c = login (f, user, resource);
  g_autofree char *status = g_strdup_printf ("<status>%s-here</status>", user);

  roster_get (c);
  go_available (c, user, resource, status);
  return c;
}

static void
send_typed (Client *c, const char *type, const char *to)
{
  g_autofree char *p = g_strdup_printf ("<presence type='%s' to='%s'/>", type, to);
  client_send (c, p);
}

/* Mutual subscription between @a (user @an) and @b (user @bn). */
static void
make_friends (Client *a, const char *an, Client *b, const char *bn)
{
  g_autofree char *ajid = g_strdup_printf ("%s@localhost", an);
  g_autofree char *bjid = g_strdup_printf ("%s@localhost", bn);
  g_autofree char *ajid_attr = g_strdup_printf ("jid='%s'", ajid);
  g_autofree char *bjid_attr = g_strdup_printf ("jid='%s'", bjid);

  send_typed (a, "subscribe", bjid);
  send_typed (b, "subscribed", ajid);
  send_typed (b, "subscribe", ajid);
  send_typed (a, "subscribed", bjid);
  g_assert_true (expect_stanza (a, "iq", bjid_attr, "subscription='both'", NULL));
  g_assert_true (expect_stanza (b, "iq", ajid_attr, "subscription='both'", NULL));
  drain (a);
  drain (b);
}

/* ---- roster management ----------------------------------------------------------- */

static void
test_roster_features (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_connect (&f->d);
  static const char raw[] = "\0alice\0pw-alice";
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, sizeof raw - 1);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_null (strstr (c->in->str, "urn:xmpp:features:rosterver"));
  client_send (c, auth);
  g_assert_true (client_expect (c, "<success"));
  g_string_truncate (c->in, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_nonnull (strstr (c->in->str, "<ver xmlns='urn:xmpp:features:rosterver'/>"));
  g_assert_nonnull (strstr (c->in->str, "<sub xmlns='urn:xmpp:features:pre-approval'/>"));
}

static void
test_roster_get_set_remove (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c1 = login (f, "alice", "one");
  g_autoptr(Client) c2 = login (f, "alice", "two");
  g_autoptr(Client) c3 = login (f, "alice", "three");   /* never asks: not interested */

  /* An empty roster, version 0. */
  client_send (c1, "<iq type='get' id='g1'><query xmlns='jabber:iq:roster' ver=''/></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='g1'", "type='result'", "ver='0'", NULL));
  g_assert_null (strstr (c1->in->str, "<item"));
  roster_get (c2);

  /* Adding: a result and a push to each interested resource. */
  client_send (c1, "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'>"
                   "<item jid='Bob@LocalHost' name='Bob'><group>Friends</group></item>"
                   "</query></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='s1'", "type='result'", NULL));
  for (Client *c = c1; c != NULL; c = c == c1 ? c2 : NULL)
    g_assert_true (expect_stanza (c, "iq", "type='set'", "ver='1'", "jid='bob@localhost'",
                                  "name='Bob'", "subscription='none'",
                                  "<group>Friends</group>", NULL));
  sync_client (c3);
  g_assert_false (has_stanza (c3, "iq", "jabber:iq:roster", NULL));

  /* Versioning: the same version gets an empty result. */
  client_send (c1, "<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='1'/></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='g2'", "type='result'", NULL));
  g_assert_null (strstr (c1->in->str, "jabber:iq:roster"));
  /* An older one gets the whole roster. */
  client_send (c1, "<iq type='get' id='g3'><query xmlns='jabber:iq:roster' ver='0'/></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='g3'", "ver='1'", "jid='bob@localhost'",
                                "<group>Friends</group>", NULL));

  /* Updating replaces the name and the groups. */
  client_send (c2, "<iq type='set' id='s2'><query xmlns='jabber:iq:roster'>"
                   "<item jid='bob@localhost' name='Bobby'><group>A</group><group>B</group>"
                   "</item></query></iq>");
  g_assert_true (expect_stanza (c2, "iq", "id='s2'", "type='result'", NULL));
  for (Client *c = c1; c != NULL; c = c == c1 ? c2 : NULL)
    g_assert_true (expect_stanza (c, "iq", "type='set'", "ver='2'", "name='Bobby'",
                                  "<group>A</group><group>B</group>", NULL));
  g_assert_null (strstr (c1->in->str, "Friends"));

  /* Another item, then removing the first. */
  client_send (c1, "<iq type='set' id='s3'><query xmlns='jabber:iq:roster'>"
                   "<item jid='carol@localhost'/></query></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='s3'", "type='result'", NULL));
  g_assert_true (expect_stanza (c2, "iq", "ver='3'", "jid='carol@localhost'", NULL));
  client_send (c1, "<iq type='set' id='s4'><query xmlns='jabber:iq:roster'>"
                   "<item jid='bob@localhost' subscription='remove'/></query></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='s4'", "type='result'", NULL));
  for (Client *c = c1; c != NULL; c = c == c1 ? c2 : NULL)
    g_assert_true (expect_stanza (c, "iq", "type='set'", "ver='4'", "jid='bob@localhost'",
                                  "subscription='remove'", NULL));
  sync_client (c3);
  g_assert_false (has_stanza (c3, "iq", "jabber:iq:roster", NULL));
  /* Removing what is not there: item-not-found. */
  client_send (c1, "<iq type='set' id='s5'><query xmlns='jabber:iq:roster'>"
                   "<item jid='bob@localhost' subscription='remove'/></query></iq>");
  g_assert_true (expect_stanza (c1, "iq", "id='s5'", "type='error'", "<item-not-found", NULL));

  /* It is all stored: a new session reads it back. */
  client_free (g_steal_pointer (&c1));
  client_free (g_steal_pointer (&c2));
  client_free (g_steal_pointer (&c3));
  g_autoptr(Client) c4 = login (f, "alice", "four");
  client_send (c4, "<iq type='get' id='g4'><query xmlns='jabber:iq:roster' ver='3'/></iq>");
  g_assert_true (expect_stanza (c4, "iq", "id='g4'", "ver='4'", "jid='carol@localhost'", NULL));
  g_assert_null (strstr (c4->in->str, "bob@localhost"));
}

/* A roster set that must fail with @condition. */
static void
expect_set_error (Client *c, const char *query, const char *to, const char *condition)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("bad%u", ++serial);
  g_autofree char *id_attr = g_strdup_printf ("id='%s'", id);
  g_autofree char *cond = g_strdup_printf ("<%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>",
                                           condition);
  g_autofree char *iq = g_strdup_printf ("<iq type='set' id='%s'%s%s%s>"
                                         "<query xmlns='jabber:iq:roster'>%s</query></iq>",
                                         id, to != NULL ? " to='" : "", to != NULL ? to : "",
                                         to != NULL ? "'" : "", query);

  client_send (c, iq);
  g_assert_true (expect_stanza (c, "iq", id_attr, "type='error'", cond, NULL));
}

static void
test_roster_errors (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login (f, "alice", "one");
  g_autofree char *long_name = g_strnfill (2000, 'x');
  g_autofree char *long_item = g_strdup_printf ("<item jid='bob@localhost' name='%s'/>", long_name);

  roster_get (c);
  /* RFC 6121 §2.3.3. */
  expect_set_error (c, "<item jid='bob@localhost'/><item jid='carol@localhost'/>", NULL,
                    "bad-request");
  expect_set_error (c, "", NULL, "bad-request");
  expect_set_error (c, "<item name='nobody'/>", NULL, "bad-request");
  expect_set_error (c, "<item jid='bob@localhost'><group>G</group><group>G</group></item>",
                    NULL, "bad-request");
  expect_set_error (c, "<item jid='bob@localhost'><group></group></item>", NULL,
                    "not-acceptable");
  expect_set_error (c, long_item, NULL, "not-acceptable");
  expect_set_error (c, "<item jid='bad@@jid'/>", NULL, "jid-malformed");
  /* Another account's roster is not ours to change or read. */
  expect_set_error (c, "<item jid='carol@localhost'/>", "bob@localhost", "forbidden");
  client_send (c, "<iq type='get' id='other' to='bob@localhost'>"
                  "<query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='other'", "type='error'", "<forbidden", NULL));
  /* Nothing of that changed the roster. */
  sync_client (c);
  g_assert_false (has_stanza (c, "iq", "type='set'", NULL));

  /* §2.1.5: a subscription other than "remove" in a set is ignored. */
  client_send (c, "<iq type='set' id='ign'><query xmlns='jabber:iq:roster'>"
                  "<item jid='bob@localhost' subscription='both' ask='subscribe'/></query></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='ign'", "type='result'", NULL));
  g_assert_true (expect_stanza (c, "iq", "type='set'", "jid='bob@localhost'",
                                "subscription='none'", NULL));
  g_assert_null (strstr (c->in->str, "ask="));
  /* A set addressed to one's own bare JID is fine. */
  client_send (c, "<iq type='set' id='own' to='alice@localhost'><query xmlns='jabber:iq:roster'>"
                  "<item jid='carol@localhost'/></query></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='own'", "type='result'", NULL));
}

/* ---- subscriptions ------------------------------------------------------------------ */

static void
test_subscription_handshake (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) b = login_available (f, "bob", "b");

  /* alice asks: pending out on her side, the request reaches bob from her
   * bare JID; bob's roster shows nothing yet ("None + Pending In"). */
  send_typed (a, "subscribe", "bob@localhost");
  g_assert_true (expect_stanza (a, "iq", "type='set'", "jid='bob@localhost'",
                                "subscription='none'", "ask='subscribe'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='subscribe'", "from='alice@localhost'",
                                "to='bob@localhost'", NULL));
  sync_client (b);
  g_assert_false (has_stanza (b, "iq", "jabber:iq:roster", NULL));

  /* bob approves: from on his side, to on hers, and she gets his presence. */
  send_typed (b, "subscribed", "alice@localhost");
  g_assert_true (expect_stanza (b, "iq", "type='set'", "jid='alice@localhost'",
                                "subscription='from'", NULL));
  g_assert_true (expect_stanza (a, "presence", "type='subscribed'", "from='bob@localhost'", NULL));
  g_assert_true (expect_stanza (a, "iq", "type='set'", "jid='bob@localhost'",
                                "subscription='to'", NULL));
  g_assert_true (expect_stanza (a, "presence", "from='bob@localhost/b'", "bob-here", NULL));
  g_assert_null (strstr (a->in->str, "ask="));

  /* The other way round. */
  send_typed (b, "subscribe", "alice@localhost");
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='from'",
                                "ask='subscribe'", NULL));
  g_assert_true (expect_stanza (a, "presence", "type='subscribe'", "from='bob@localhost'", NULL));
  send_typed (a, "subscribed", "bob@localhost");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "subscription='both'", NULL));
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='both'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='subscribed'", "from='alice@localhost'",
                                NULL));
  g_assert_true (expect_stanza (b, "presence", "from='alice@localhost/a'", "alice-here", NULL));

  /* Presence updates go to the subscriber and to one's own resources. */
  client_send (a, "<presence><show>away</show><status>out for lunch</status></presence>");
  g_assert_true (expect_stanza (b, "presence", "from='alice@localhost/a'", "out for lunch", NULL));
  g_assert_true (expect_stanza (a, "presence", "from='alice@localhost/a'", "out for lunch", NULL));

  /* The stored rosters agree. */
  client_send (b, "<iq type='get' id='bg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (b, "iq", "id='bg'", "jid='alice@localhost'",
                                "subscription='both'", NULL));

  /* alice stops following bob: she keeps "from", he keeps "to", and she
   * hears that he is gone. */
  drain (a);
  drain (b);
  send_typed (a, "unsubscribe", "bob@localhost");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "subscription='from'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unsubscribe'", "from='alice@localhost'",
                                NULL));
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='to'", NULL));
  g_assert_true (expect_stanza (a, "presence", "type='unavailable'", "from='bob@localhost/b'",
                                NULL));
  /* … and cancels his: nothing left either way. */
  send_typed (a, "unsubscribed", "bob@localhost");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "subscription='none'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unsubscribed'", "from='alice@localhost'",
                                NULL));
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='none'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unavailable'", "from='alice@localhost/a'",
                                NULL));
  /* Updates no longer reach bob. */
  client_send (a, "<presence><status>back again</status></presence>");
  g_assert_true (expect_stanza (a, "presence", "back again", NULL));
  sync_client (b);
  g_assert_null (strstr (b->in->str, "back again"));
}

/* Removing a contact ends the subscriptions both ways (RFC 6121 §2.5.2). */
static void
test_remove_unsubscribes (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) b = login_available (f, "bob", "b");

  make_friends (a, "alice", b, "bob");
  client_send (a, "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
                  "<item jid='bob@localhost' subscription='remove'/></query></iq>");
  g_assert_true (expect_stanza (a, "iq", "id='rm'", "type='result'", NULL));
  g_assert_true (expect_stanza (a, "iq", "type='set'", "subscription='remove'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unsubscribe'", "from='alice@localhost'",
                                NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unsubscribed'", "from='alice@localhost'",
                                NULL));
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='none'", NULL));
  g_assert_true (expect_stanza (b, "presence", "type='unavailable'", "from='alice@localhost/a'",
                                NULL));
  g_assert_true (expect_stanza (a, "presence", "type='unavailable'", "from='bob@localhost/b'",
                                NULL));
}

static void
test_preapproval (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) c = NULL;

  /* alice approves carol before carol asks: remembered, not sent. */
  send_typed (a, "subscribed", "carol@localhost");
  g_assert_true (expect_stanza (a, "iq", "type='set'", "jid='carol@localhost'",
                                "subscription='none'", "approved='true'", NULL));

  c = login_available (f, "carol", "c");
  sync_client (c);
  g_assert_false (has_stanza (c, "presence", "type='subscribed'", NULL));
  /* carol asks and is answered at once on alice's behalf. */
  send_typed (c, "subscribe", "alice@localhost");
  g_assert_true (expect_stanza (c, "iq", "jid='alice@localhost'", "ask='subscribe'", NULL));
  g_assert_true (expect_stanza (c, "presence", "type='subscribed'", "from='alice@localhost'", NULL));
  g_assert_true (expect_stanza (c, "iq", "jid='alice@localhost'", "subscription='to'", NULL));
  g_assert_true (expect_stanza (c, "presence", "from='alice@localhost/a'", "alice-here", NULL));
  g_assert_true (expect_stanza (a, "iq", "jid='carol@localhost'", "subscription='from'", NULL));
  g_assert_null (strstr (a->in->str, "approved="));
  /* alice never saw the request. */
  sync_client (a);
  g_assert_false (has_stanza (a, "presence", "type='subscribe'", NULL));
}

static void
test_pending_redelivered (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) b = NULL;

  /* bob is offline: the request waits for him. */
  client_send (a, "<presence type='subscribe' to='bob@localhost'><status>it is alice</status>"
                  "</presence>");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "ask='subscribe'", NULL));
  /* Requests to accounts that do not exist vanish; her roster still says
   * she asked. */
  send_typed (a, "subscribe", "nobody@localhost");
  g_assert_true (expect_stanza (a, "iq", "jid='nobody@localhost'", "ask='subscribe'", NULL));

  /* bob logs in: his roster does not show alice; his initial presence
   * brings the request, with its status. */
  b = login (f, "bob", "b1");
  client_send (b, "<iq type='get' id='bg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (b, "iq", "id='bg'", "type='result'", NULL));
  g_assert_null (strstr (b->in->str, "alice"));
  go_available (b, "bob", "b1", NULL);
  g_assert_true (expect_stanza (b, "presence", "type='subscribe'", "from='alice@localhost'",
                                "it is alice", NULL));

  /* Unanswered, it comes again at the next login, on any resource. */
  client_free (g_steal_pointer (&b));
  b = login (f, "bob", "b2");
  go_available (b, "bob", "b2", NULL);
  g_assert_true (expect_stanza (b, "presence", "type='subscribe'", "from='alice@localhost'", NULL));

  /* Answered, it is gone. */
  send_typed (b, "subscribed", "alice@localhost");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "subscription='to'", NULL));
  client_free (g_steal_pointer (&b));
  b = login (f, "bob", "b3");
  go_available (b, "bob", "b3", NULL);
  sync_client (b);
  g_assert_false (has_stanza (b, "presence", "type='subscribe'", NULL));
}

/* ---- presence ------------------------------------------------------------------------ */

/* presence uses roster/1: reloading the roster with clients connected
 * re-binds presence to the new roster (broadcasts and probes still find
 * the contacts), and reloading presence re-binds the roster's use of
 * presence/1 (an approval sends the approver's current presence). */
static void
test_services_reload (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) b = login_available (f, "bob", "b");
  g_autoptr(Client) c = login_available (f, "carol", "c");
  g_autoptr(Client) a2 = NULL;
  g_autofree char *out = NULL, *out2 = NULL;

  make_friends (a, "alice", b, "bob");
  g_assert_cmpint (mynactl (&f->d, &out, "reload", "roster", NULL), ==, 0);
  client_send (b, "<presence><status>after-roster-reload</status></presence>");
  g_assert_true (expect_stanza (a, "presence", "from='bob@localhost/b'", "after-roster-reload",
                                NULL));
  a2 = login (f, "alice", "a2");
  go_available (a2, "alice", "a2", NULL);
  g_assert_true (expect_stanza (a2, "presence", "from='bob@localhost/b'",
                                "after-roster-reload", NULL));

  g_assert_cmpint (mynactl (&f->d, &out2, "reload", "presence", NULL), ==, 0);
  /* carol asks alice; alice approves: carol gets alice's current presence,
   * which the roster reads through presence/1. */
  send_typed (c, "subscribe", "alice@localhost");
  g_assert_true (expect_stanza (a, "presence", "type='subscribe'", "from='carol@localhost'",
                                NULL));
  send_typed (a, "subscribed", "carol@localhost");
  g_assert_true (expect_stanza (c, "presence", "from='alice@localhost/a'", "alice-here", NULL));
}

/* A provider in use is not unloaded; --cascade unloads its users first. */
static void
test_services_unload (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "unload", "roster", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "roster provides roster/1 used by presence on localhost: "
                                 "unload them first, or use `mynactl unload --cascade roster`"));
  g_assert_cmpint (mynactl (&f->d, &out2, "unload", "--cascade", "roster", NULL), ==, 0);
  g_assert_cmpint (mynactl (&f->d, &out3, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (out3, "presence 1.0 eager (not loaded)"));
  g_assert_nonnull (strstr (out3, "roster 1.0 eager (not loaded)"));
}

static void
test_probe_and_drop (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) b = login_available (f, "bob", "b");
  g_autoptr(Client) a2 = NULL;

  make_friends (a, "alice", b, "bob");
  /* A second resource of alice: at its initial presence it learns bob's
   * presence (the probe is answered) and its sibling's. */
  a2 = login (f, "alice", "a2");
  go_available (a2, "alice", "a2", "<status>second</status>");
  g_assert_true (expect_stanza (a2, "presence", "from='bob@localhost/b'", "bob-here", NULL));
  g_assert_true (expect_stanza (a2, "presence", "from='alice@localhost/a'", "alice-here", NULL));
  g_assert_true (expect_stanza (b, "presence", "from='alice@localhost/a2'", "second", NULL));
  g_assert_true (expect_stanza (a, "presence", "from='alice@localhost/a2'", "second", NULL));

  /* alice's first connection drops without </stream:stream>. */
  client_free (g_steal_pointer (&a));
  g_assert_true (expect_stanza (b, "presence", "type='unavailable'", "from='alice@localhost/a'",
                                NULL));
  g_assert_true (expect_stanza (a2, "presence", "type='unavailable'", "from='alice@localhost/a'",
                                NULL));
  /* An explicit unavailable from bob reaches alice. */
  client_send (b, "<presence type='unavailable'><status>bye</status></presence>");
  g_assert_true (expect_stanza (a2, "presence", "type='unavailable'", "from='bob@localhost/b'",
                                "bye", NULL));
  /* Closing the stream afterwards sends nothing more. */
  client_send (b, "</stream:stream>");
  g_assert_true (client_expect_closed (b));
  sync_client (a2);
  g_assert_false (has_stanza (a2, "presence", "from='bob@localhost/b'", NULL));
}

static void
test_directed (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");
  g_autoptr(Client) c = login_available (f, "carol", "c");
  g_autoptr(Client) a2 = NULL;

  /* No subscription: carol sees nothing of alice's broadcasts … */
  client_send (a, "<presence><status>broadcast only</status></presence>");
  g_assert_true (expect_stanza (a, "presence", "broadcast only", NULL));
  sync_client (c);
  g_assert_null (strstr (c->in->str, "broadcast only"));
  /* … only what is sent to her, and then the unavailable. */
  client_send (a, "<presence to='carol@localhost/c'><status>just for carol</status></presence>");
  g_assert_true (expect_stanza (c, "presence", "from='alice@localhost/a'", "just for carol", NULL));
  client_send (a, "<presence type='unavailable'/>");
  g_assert_true (expect_stanza (c, "presence", "type='unavailable'", "from='alice@localhost/a'",
                                NULL));

  /* Directed presence to the bare JID, then a dropped connection. */
  a2 = login (f, "alice", "a2");
  client_send (a2, "<presence to='carol@localhost'><status>hello again</status></presence>");
  g_assert_true (expect_stanza (c, "presence", "from='alice@localhost/a2'", "hello again", NULL));
  client_free (g_steal_pointer (&a2));
  g_assert_true (expect_stanza (c, "presence", "type='unavailable'", "from='alice@localhost/a2'",
                                NULL));
}

static void
test_priorities (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login (f, "alice", "a");
  g_autoptr(Client) b1 = login (f, "bob", "b1");
  g_autoptr(Client) b2 = login (f, "bob", "b2");
  g_autoptr(Client) b3 = login (f, "bob", "b3");

  go_available (b1, "bob", "b1", "<priority>5</priority>");
  go_available (b2, "bob", "b2", "<priority>1</priority>");
  go_available (b3, "bob", "b3", "<priority>-1</priority>");
  drain (b1);
  drain (b2);
  drain (b3);

  /* To the bare JID: the highest priority only. */
  client_send (a, "<message to='bob@localhost' type='chat'><body>msg-one</body></message>");
  g_assert_true (expect_stanza (b1, "message", "msg-one", NULL));
  sync_client (a);
  sync_client (b2);
  sync_client (b3);
  g_assert_null (strstr (b2->in->str, "msg-one"));
  g_assert_null (strstr (b3->in->str, "msg-one"));

  /* b1 lowers its priority: b2 takes over. */
  client_send (b1, "<presence><priority>0</priority></presence>");
  g_assert_true (expect_stanza (b1, "presence", "from='bob@localhost/b1'", NULL));
  client_send (a, "<message to='bob@localhost' type='chat'><body>msg-two</body></message>");
  g_assert_true (expect_stanza (b2, "message", "msg-two", NULL));
  sync_client (a);
  sync_client (b1);
  g_assert_null (strstr (b1->in->str, "msg-two"));

  /* With only a negative priority left, nothing comes to bare-JID messages. */
  client_send (b1, "<presence type='unavailable'/>");
  client_send (b2, "<presence type='unavailable'/>");
  sync_client (b1);
  sync_client (b2);
  client_send (a, "<message to='bob@localhost' type='chat'><body>msg-three</body></message>");
  sync_client (a);
  sync_client (b3);
  g_assert_null (strstr (b3->in->str, "msg-three"));
  /* A full JID still reaches it. */
  client_send (a, "<message to='bob@localhost/b3' type='chat'><body>msg-four</body></message>");
  g_assert_true (expect_stanza (b3, "message", "msg-four", NULL));
}

/* ---- output: a client is judged by whether it reads ----------------------------- */

#define BIG_SENDERS 20
#define BIG_PER_SENDER 2
#define BIG_BODY (200 * 1000)

/* Reads @c on a thread as fast as it can, counting whole messages. */
typedef struct {
  Client  *c;
  const char *marker;  /* counted; NULL: "</message>" */
  guint    want;
  guint    got;
  gsize    bytes;
  gboolean eof;
  gboolean stream_error;
} Reader;

static guint
count_in (const char *buf, gsize len, const char *needle)
{
  guint n = 0;
  gsize nl = strlen (needle);

  for (const char *p = buf; (p = g_strstr_len (p, (gssize) (buf + len - p), needle)) != NULL;
       p += nl)
    n++;
  return n;
}

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;

  r->got = client_count (r->c, r->marker != NULL ? r->marker : "</message>", r->want,
                         60 * 1000, &r->bytes, &r->stream_error);
  r->eof = r->c->eof;
  return NULL;
}

static char *
big_message (const char *to, guint n)
{
  GString *m = g_string_sized_new (BIG_BODY + 128);

  g_string_append_printf (m, "<message to='%s' type='chat' id='big%u'><body>", to, n);
  for (gsize i = 0; i < BIG_BODY; i++)
    g_string_append_c (m, (char) ('a' + i % 26));
  g_string_append (m, "</body></message>");
  return g_string_free (m, FALSE);
}

/* Logs in BIG_SENDERS senders. */
static void
login_senders (Fixture *f, Client **s)
{
  for (guint i = 0; i < BIG_SENDERS; i++)
    {
      g_autofree char *user = g_strdup_printf ("sender%02u", i);
      g_autofree char *pw = g_strconcat ("pw-", user, NULL);
      mynad_add_user (&f->d, user, pw);
      s[i] = login (f, user, "s");
    }
}

/* Twenty senders send 200 KB messages to one recipient, 8 MB in all, far
 * over max_output (1M): a recipient that reads as fast as it can gets
 * them all and stays connected. */
static void
test_output_many_senders (Fixture *f, gconstpointer unused)
{
  Client *s[BIG_SENDERS];
  mynad_add_user (&f->d, "rcpt", "pw-rcpt");
  g_autoptr(Client) r = login (f, "rcpt", "r");
  Reader reader = { .c = r, .want = BIG_SENDERS * BIG_PER_SENDER };

  login_senders (f, s);
  GThread *t = g_thread_new ("reader", reader_thread, &reader);
  for (guint k = 0; k < BIG_PER_SENDER; k++)
    for (guint i = 0; i < BIG_SENDERS; i++)
      {
        g_autofree char *m = big_message ("rcpt@localhost/r", k * BIG_SENDERS + i);
        client_send (s[i], m);
      }
  g_thread_join (t);
  g_test_message ("recipient read %" G_GSIZE_FORMAT " bytes, %u of %u messages%s",
                  reader.bytes, reader.got, reader.want,
                  reader.eof ? "; disconnected" : "");
  g_assert_false (reader.stream_error);
  g_assert_false (reader.eof);
  g_assert_cmpuint (reader.got, ==, reader.want);
  g_assert_null (strstr (f->d.log->str, "client is not reading"));
  sync_client (r);
  for (guint i = 0; i < BIG_SENDERS; i++)
    client_free (s[i]);
}

/* The same load to a recipient that never reads: it is cut off once its
 * queue stayed over max_output for output_drain_timeout. */
static void
test_output_stalled_reader (Fixture *f, gconstpointer unused)
{
  Client *s[BIG_SENDERS];
  mynad_add_user (&f->d, "rcpt", "pw-rcpt");
  g_autoptr(Client) r = login (f, "rcpt", "r");

  login_senders (f, s);
  for (guint k = 0; k < BIG_PER_SENDER; k++)
    for (guint i = 0; i < BIG_SENDERS; i++)
      {
        g_autofree char *m = big_message ("rcpt@localhost/r", k * BIG_SENDERS + i);
        client_send (s[i], m);
      }
  gint64 sent = g_get_monotonic_time ();
  /* Cut off by the drain deadline (2 s), not by the hard cap. */
  g_assert_true (mynad_wait_log (&f->d, "client is not reading", 2000 + 5000));
  g_test_message ("stalled recipient cut off %" G_GINT64_FORMAT " ms after the last send",
                  (g_get_monotonic_time () - sent) / 1000);
  g_assert_nonnull (strstr (f->d.log->str, "over max_output"));
  g_assert_true (client_expect_closed (r));
  for (guint i = 0; i < BIG_SENDERS; i++)
    client_free (s[i]);
}

#define BIG_REQUESTS 6
#define BIG_STATUS (200 * 1000)

/* Six accounts each ask the offline user for a subscription with a
 * 200 KB status: at login the user gets all six, trimmed to what RFC 6121
 * needs plus a short status and nick, stays connected, and clears them by
 * answering or by removing the (hidden) items. */
static void
test_pending_big_requests (Fixture *f, gconstpointer unused)
{
  g_autoptr(GString) status = g_string_sized_new (BIG_STATUS);

  for (gsize i = 0; i < BIG_STATUS; i++)
    g_string_append_c (status, (char) ('a' + i % 26));
  for (guint i = 0; i < BIG_REQUESTS; i++)
    {
      g_autofree char *user = g_strdup_printf ("asker%u", i);
      g_autofree char *pw = g_strconcat ("pw-", user, NULL);
      mynad_add_user (&f->d, user, pw);
      g_autoptr(Client) a = login (f, user, "x");
      roster_get (a);
      g_autofree char *p = g_strdup_printf ("<presence type='subscribe' to='bob@localhost'>"
                                            "<status>%s</status><nick xmlns='"
                                            "http://jabber.org/protocol/nick'>Nick %u</nick>"
                                            "</presence>", status->str, i);
      client_send (a, p);
      g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "ask='subscribe'", NULL));
    }

  /* At every login: all six, trimmed, and the session stays. */
  for (int round = 0; round < 2; round++)
    {
      g_autoptr(Client) b = login (f, "bob", "b");
      roster_get (b);
      g_assert_null (strstr (b->in->str, "asker"));
      go_available (b, "bob", "b", NULL);
      for (guint i = 0; i < BIG_REQUESTS; i++)
        {
          g_autofree char *from = g_strdup_printf ("from='asker%u@localhost'", i);
          g_autofree char *nick = g_strdup_printf ("Nick %u</nick>", i);
          const char *needles[] = { "type='subscribe'", from, NULL };
          g_autofree char *seg = take_stanza (b, "presence", needles);

          g_assert_nonnull (seg);
          /* Trimmed: no 200 KB status any more, the nick kept. */
          g_assert_cmpuint (strlen (seg), <, 2048);
          g_assert_nonnull (strstr (seg, "<status>abcdefghij"));
          g_assert_nonnull (strstr (seg, nick));
        }
      sync_client (b);
      g_assert_true (client_is_open (b));
    }

  /* Cleared: three answered 'unsubscribed', three removed from the
   * roster although it never showed them. */
  g_autoptr(Client) b = login (f, "bob", "b");
  for (guint i = 0; i < BIG_REQUESTS; i++)
    {
      g_autofree char *jid = g_strdup_printf ("asker%u@localhost", i);
      if (i < BIG_REQUESTS / 2)
        send_typed (b, "unsubscribed", jid);
      else
        {
          g_autofree char *iq = g_strdup_printf ("<iq type='set' id='rm%u'><query xmlns="
                                                 "'jabber:iq:roster'><item jid='%s' "
                                                 "subscription='remove'/></query></iq>", i, jid);
          g_autofree char *id = g_strdup_printf ("id='rm%u'", i);
          client_send (b, iq);
          g_assert_true (expect_stanza (b, "iq", id, "type='result'", NULL));
        }
    }
  sync_client (b);
  client_free (g_steal_pointer (&b));
  b = login (f, "bob", "b");
  go_available (b, "bob", "b", NULL);
  sync_client (b);
  g_assert_false (has_stanza (b, "presence", "type='subscribe'", NULL));
}

/* Writes @n roster items of @user straight into the storage of a mynad
 * not started yet; @make gives item @i's contact JID and stored value. */
static void
seed_roster (const char *dir, const char *user, guint n,
             char *(*make) (guint i, char **jid))
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", dir);
  g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *jid = NULL;
      g_autofree char *item = make (i, &jid);
      myna_kv_set (st, "localhost", user, "roster/roster", jid, item, NULL, NULL, NULL);
    }
  g_assert_true (myna_storage_flush (st, &error));
}

#define MANY_REQUESTS 10000

/* A pending request as stored, with a status of the most kept (1 KB). */
static char *
pending_request_item (guint i, char **jid)
{
  g_autoptr(GString) status = g_string_new (NULL);

  *jid = g_strdup_printf ("asker%05u@example.net", i);
  for (guint k = 0; k < 1000; k++)
    g_string_append_c (status, (char) ('a' + k % 26));
  return g_strdup_printf ("<item xmlns='jabber:iq:roster' jid='%s' subscription='none'>"
                          "<state xmlns='urn:myna:roster:0' pending-in='true' hidden='true'>"
                          "<presence xmlns='jabber:client' type='subscribe' from='%s' "
                          "to='bob@localhost'><status>%s</status></presence></state></item>",
                          *jid, *jid, status->str);
}

/* 10,000 pending requests (11 MB even trimmed) go out at the pace the
 * client reads: one that sends its initial presence and reads only 3 s
 * later (output_drain_timeout = 2s) is not cut off, and gets them all. */
static void
test_pending_paced (void)
{
  Mynad d = { .modules = MODULES };

  mynad_prepare (&d, "max_output = 256K\noutput_drain_timeout = 2s\n" MYNAD_PLAIN_AUTH);
  seed_roster (d.dir, "bob", MANY_REQUESTS, pending_request_item);
  mynad_spawn (&d);
  mynad_add_user (&d, "bob", "pw-bob");
  g_autoptr(Client) b = client_login (&d, "bob", "pw-bob", "b");
  g_assert_nonnull (b);
  client_send (b, "<presence/>");
  /* Not reading for a while: the time a phone takes to come back. */
  mynad_wait_log (&d, "client is not reading", 3000);
  Reader r = { .c = b, .marker = "type='subscribe'", .want = MANY_REQUESTS };
  reader_thread (&r);
  g_test_message ("read %" G_GSIZE_FORMAT " bytes, %u of %u requests%s", r.bytes, r.got,
                  r.want, r.eof ? "; disconnected" : "");
  g_assert_false (r.stream_error);
  g_assert_cmpuint (r.got, ==, MANY_REQUESTS);
  g_assert_null (strstr (d.log->str, "client is not reading"));
  g_string_truncate (b->in, 0);
  client_send (b, "<iq type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (b, "id='ping1'"));
  g_clear_pointer (&b, client_free);
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}

/* Reloading presence while it redelivers 10,000 pending requests to a
 * client that reads slowly (a small receive buffer: the drain waiter is
 * waiting) loses none: the new instance's attach resumes the redelivery
 * where the old one stopped. */
static void
test_pending_reload (void)
{
  Mynad d = { .modules = MODULES };
  g_autofree char *out = NULL;
  gboolean stream_error = FALSE;
  gsize bytes = 0;
  int small = 4096;
  guint got;

  mynad_prepare (&d, MYNAD_PLAIN_AUTH);
  seed_roster (d.dir, "bob", MANY_REQUESTS, pending_request_item);
  mynad_spawn (&d);
  mynad_add_user (&d, "bob", "pw-bob");
  g_autoptr(Client) b = client_login (&d, "bob", "pw-bob", "b");
  g_assert_nonnull (b);
  g_assert_cmpint (setsockopt (b->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), ==, 0);
  client_send (b, "<presence/>");
  /* The redelivery has begun; the kernel's buffers hold a few MB of the
   * 11, so it cannot have ended. */
  got = client_count (b, "type='subscribe'", 1, WAIT_MS, &bytes, &stream_error);
  g_assert_cmpuint (got, >=, 1);
  g_assert_cmpint (mynactl (&d, &out, "reload", "presence", NULL), ==, 0);
  mynad_wait_log (&d, "resuming the redelivery", WAIT_MS);
  g_assert_nonnull (strstr (d.log->str, "resuming the redelivery"));
  /* Now reading fast: a tiny window would take minutes for 11 MB. */
  int big = 4 * 1024 * 1024;
  g_assert_cmpint (setsockopt (b->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big), ==, 0);
  got += client_count (b, "type='subscribe'", MANY_REQUESTS - got, 30 * 1000, &bytes,
                       &stream_error);
  g_test_message ("read %" G_GSIZE_FORMAT " bytes, %u of %u requests", bytes, got,
                  MANY_REQUESTS);
  g_assert_false (stream_error);
  g_assert_cmpuint (got, ==, MANY_REQUESTS);
  g_clear_pointer (&b, client_free);
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}

#define BIG_ROSTER 15000

static char *
big_roster_item (guint i, char **jid)
{
  *jid = g_strdup_printf ("contact%05u@example.net", i);
  return g_strdup_printf ("<item xmlns='jabber:iq:roster' jid='%s' name='Contact number %05u' "
                          "subscription='none'><group>Friends</group></item>", *jid, i);
}

/* A roster of 15,000 items (1.7 MB in one result, over max_output) is
 * fetched whole, and the session goes on. */
static void
test_big_roster (void)
{
  Mynad d = { .modules = MODULES };

  mynad_prepare (&d, MYNAD_PLAIN_AUTH);
  seed_roster (d.dir, "alice", BIG_ROSTER, big_roster_item);
  mynad_spawn (&d);
  mynad_add_user (&d, "alice", "pw-alice");
  g_autoptr(Client) c = client_login (&d, "alice", "pw-alice", "r");
  g_assert_nonnull (c);
  client_send (c, "<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (client_expect (c, "</query></iq>"));
  g_test_message ("roster result: %" G_GSIZE_FORMAT " bytes", c->in->len);
  g_assert_cmpuint (c->in->len, >, 1024 * 1024);
  g_assert_cmpuint (count_in (c->in->str, c->in->len, "<item "), ==, BIG_ROSTER);
  g_string_truncate (c->in, 0);
  client_send (c, "<iq type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (c, "id='ping1'"));
  g_assert_null (strstr (d.log->str, "client is not reading"));
  g_clear_pointer (&c, client_free);
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}


/* ---- the roster's size ------------------------------------------------------ */

/* [module:roster] max_items = 5 */
#define ROSTER_CAP_CONF "[module:roster]\nmax_items = 5\n"

/* A roster set of @jid (with @name) by @c; waits for its answer, which
 * holds @needle. */
static void
cap_set (Client *c, const char *jid, const char *name, const char *needle)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("cap%u", ++serial);
  g_autofree char *id_attr = g_strdup_printf ("id='%s'", id);
  g_autofree char *iq = g_strdup_printf ("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'>"
                                         "<item jid='%s' name='%s'/></query></iq>", id, jid, name);

  client_send (c, iq);
  g_assert_true (expect_stanza (c, "iq", id_attr, needle, NULL));
}

#define CAP_FULL "<not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"

/* The 6th roster set for a new contact is refused with <not-allowed/>
 * and the limit in the text; existing items still change, and a removal
 * makes room again. */
static void
test_roster_cap_set (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login (f, "alice", "one");

  roster_get (c);
  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *jid = g_strdup_printf ("contact%u@example.net", i);
      cap_set (c, jid, "C", "type='result'");
    }
  cap_set (c, "contact6@example.net", "C", CAP_FULL);
  g_assert_null (strstr (c->in->str, "contact6"));
  /* The error says why, and no push announced the item. */
  cap_set (c, "contact6@example.net", "C", "at most 5 items");
  sync_client (c);
  g_assert_false (has_stanza (c, "iq", "jid='contact6@example.net'", NULL));
  /* Updating an item there works at the limit. */
  cap_set (c, "contact3@example.net", "Renamed", "type='result'");
  g_assert_true (expect_stanza (c, "iq", "type='set'", "jid='contact3@example.net'",
                                "name='Renamed'", NULL));
  /* A removal makes room for one, not two. */
  client_send (c, "<iq type='set' id='rm1'><query xmlns='jabber:iq:roster'>"
                  "<item jid='contact1@example.net' subscription='remove'/></query></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='rm1'", "type='result'", NULL));
  cap_set (c, "contact6@example.net", "C", "type='result'");
  cap_set (c, "contact7@example.net", "C", CAP_FULL);
  /* The count is kept across sessions. */
  client_free (g_steal_pointer (&c));
  c = login (f, "alice", "two");
  cap_set (c, "contact7@example.net", "C", CAP_FULL);
  roster_get (c);
  cap_set (c, "contact7@example.net", "C", CAP_FULL);
}

/* The user's own subscribe or pre-approval to a 6th contact is refused
 * with a presence error from that contact; to a contact already there,
 * it goes on. */
static void
test_roster_cap_outbound (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login_available (f, "alice", "a");

  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *jid = g_strdup_printf ("contact%u@example.net", i);
      cap_set (a, jid, "C", "type='result'");
    }
  send_typed (a, "subscribe", "contact6@example.net");
  g_assert_true (expect_stanza (a, "presence", "type='error'", "from='contact6@example.net'",
                                "to='alice@localhost/a'", CAP_FULL, "at most 5 items", NULL));
  send_typed (a, "subscribed", "contact7@example.net");
  g_assert_true (expect_stanza (a, "presence", "type='error'", "from='contact7@example.net'",
                                CAP_FULL, NULL));
  /* To a contact in the roster, a subscribe still works. */
  send_typed (a, "subscribe", "contact2@example.net");
  g_assert_true (expect_stanza (a, "iq", "type='set'", "jid='contact2@example.net'",
                                "ask='subscribe'", NULL));
  sync_client (a);
  g_assert_false (has_stanza (a, "iq", "contact6", NULL));
  g_assert_false (has_stanza (a, "iq", "contact7", NULL));
  client_send (a, "<iq type='get' id='all'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (a, "iq", "id='all'", "contact2@example.net", NULL));
  g_assert_null (strstr (a->in->str, "contact6"));
}

static char *
cap_pending_item (guint i, char **jid)
{
  *jid = g_strdup_printf ("asker%u@example.net", i);
  return g_strdup_printf ("<item xmlns='jabber:iq:roster' jid='%s' subscription='none'>"
                          "<state xmlns='urn:myna:roster:0' pending-in='true' hidden='true'>"
                          "<presence xmlns='jabber:client' type='subscribe' from='%s' "
                          "to='bob@localhost'/></state></item>", *jid, *jid);
}

/* bob, offline, has 4 requests stored (before counts were kept); carol's
 * makes 5; alice's, the 6th stranger's, is not stored: she gets
 * <resource-constraint/> (type wait), twice, with one log line; bob
 * later gets every request but hers. */
static void
test_roster_cap_inbound (void)
{
  Fixture fx = { .d = { .modules = MODULES } };
  Fixture *f = &fx;
  g_autoptr(Client) a = NULL, b = NULL, c = NULL;
  const char *p;
  guint lines = 0;

  mynad_prepare (&f->d, ROSTER_CAP_CONF MYNAD_PLAIN_AUTH);
  seed_roster (f->d.dir, "bob", 4, cap_pending_item);
  mynad_spawn (&f->d);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");

  c = login_available (f, "carol", "c");
  send_typed (c, "subscribe", "bob@localhost");
  g_assert_true (expect_stanza (c, "iq", "jid='bob@localhost'", "ask='subscribe'", NULL));
  sync_client (c);
  g_assert_false (has_stanza (c, "presence", "type='error'", NULL));

  a = login_available (f, "alice", "a");
  send_typed (a, "subscribe", "bob@localhost");
  g_assert_true (expect_stanza (a, "presence", "type='error'", "from='bob@localhost'",
                                "type='wait'", "<resource-constraint", NULL));
  send_typed (a, "subscribe", "bob@localhost");
  g_assert_true (expect_stanza (a, "presence", "type='error'", "<resource-constraint", NULL));
  /* One line for both: a refusal logs before its error is sent, so once
   * a line logged after alice got the second error is read, a second
   * refusal line would be read too. */
  send_typed (a, "unsubscribed", "marker@example.net");
  g_assert_true (mynad_wait_log (&f->d, "sends unsubscribed to marker@example.net", WAIT_MS));
  for (p = strstr (f->d.log->str, "is full"); p != NULL; p = strstr (p + 1, "is full"))
    lines++;
  g_assert_cmpuint (lines, ==, 1);

  /* bob gets the four stored requests and carol's, not alice's. */
  b = login (f, "bob", "b");
  go_available (b, "bob", "b", NULL);
  g_assert_true (expect_stanza (b, "presence", "type='subscribe'", "from='carol@localhost'",
                                NULL));
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *from = g_strdup_printf ("from='asker%u@example.net'", i - 1);
      g_assert_true (expect_stanza (b, "presence", "type='subscribe'", from, NULL));
    }
  sync_client (b);
  g_assert_false (has_stanza (b, "presence", "from='alice@localhost'", NULL));

  g_clear_pointer (&a, client_free);
  g_clear_pointer (&b, client_free);
  g_clear_pointer (&c, client_free);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, setup, func, teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/im/roster/features", test_roster_features);
  ADD ("/im/roster/get-set-remove", test_roster_get_set_remove);
  ADD ("/im/roster/errors", test_roster_errors);
  ADD ("/im/subscription/handshake", test_subscription_handshake);
  ADD ("/im/subscription/remove", test_remove_unsubscribes);
  ADD ("/im/subscription/preapproval", test_preapproval);
  ADD ("/im/subscription/pending-redelivered", test_pending_redelivered);
  ADD ("/im/presence/probe-and-drop", test_probe_and_drop);
  ADD ("/im/presence/directed", test_directed);
  ADD ("/im/presence/priorities", test_priorities);
  ADD ("/im/services/reload", test_services_reload);
  ADD ("/im/services/unload", test_services_unload);
  ADD ("/im/output/many-senders", test_output_many_senders);
  g_test_add ("/im/output/stalled-reader", Fixture,
              "max_output = 256K\noutput_drain_timeout = 2s\n", setup,
              test_output_stalled_reader, teardown);
  ADD ("/im/subscription/pending-big", test_pending_big_requests);
  g_test_add_func ("/im/roster/big", test_big_roster);
  g_test_add_func ("/im/subscription/pending-paced", test_pending_paced);
  g_test_add_func ("/im/subscription/pending-reload", test_pending_reload);
  g_test_add ("/im/roster/cap-set", Fixture, ROSTER_CAP_CONF, setup, test_roster_cap_set,
              teardown);
  g_test_add ("/im/roster/cap-outbound", Fixture, ROSTER_CAP_CONF, setup,
              test_roster_cap_outbound, teardown);
  g_test_add_func ("/im/roster/cap-inbound", test_roster_cap_inbound);
  return g_test_run ();
}
