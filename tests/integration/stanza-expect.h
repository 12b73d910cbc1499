/* stanza-expect.h: waiting for whole stanzas on a raw client of
 * mynad-harness.h.  The input is split into top-level elements by their
 * nesting (a carbon's forwarded <message/> inside a <message/> is part of
 * it, not a stanza of its own); a stanza matches when it is a complete
 * <NAME/> holding every given substring, and a match is consumed.
 * Absence is checked after round trips (sync_client, settle), so whatever
 * the server would have sent is in the buffer by then.  Also the IM steps
 * these tests share: log in, go available, befriend. */
#pragma once

#include "mynad-harness.h"

/* The end (one past '>') of the element starting at @start ('<') of
 * @buf, or 0 while it is incomplete. */
static inline gsize
element_end (const char *buf, gsize start, gsize len)
{
  int depth = 0;

  for (gsize i = start; i < len;)
    {
      if (buf[i] != '<')
        {
          i++;
          continue;
        }
      gsize j = i + 1;
      char quote = 0;
      while (j < len && (quote != 0 || buf[j] != '>'))
        {
          if (quote != 0 && buf[j] == quote)
            quote = 0;
          else if (quote == 0 && (buf[j] == '\'' || buf[j] == '"'))
            quote = buf[j];
          j++;
        }
      if (j >= len)
        return 0;
      if (buf[i + 1] == '/')
        depth--;
      else if (buf[j - 1] != '/' && buf[i + 1] != '?')
        depth++;
      i = j + 1;
      if (depth <= 0)
        return i;
    }
  return 0;
}

/* Finds, from offset @from, the first complete top-level <@name/> holding
 * every needle: its offset and length, or FALSE. */
static inline gboolean
find_stanza_from (Client *c, gsize from, const char *name, const char *const *needles,
                  gsize *off, gsize *len)
{
  const char *buf = c->in->str;
  gsize n = c->in->len, nl = strlen (name);

  for (gsize i = from; i < n;)
    {
      if (buf[i] != '<')
        {
          i++;
          continue;
        }
      gsize end = element_end (buf, i, n);
      if (end == 0)
        return FALSE;
      char after = i + 1 + nl < n ? buf[i + 1 + nl] : '\0';
      gboolean ok = strncmp (buf + i + 1, name, nl) == 0
                    && (after == ' ' || after == '>' || after == '/');
      if (ok)
        {
          g_autofree char *seg = g_strndup (buf + i, end - i);
          for (guint k = 0; needles[k] != NULL && ok; k++)
            ok = strstr (seg, needles[k]) != NULL;
        }
      if (ok)
        {
          *off = i;
          *len = end - i;
          return TRUE;
        }
      i = end;
    }
  return FALSE;
}

static inline GPtrArray *
collect_needles (const char *first, va_list ap)
{
  GPtrArray *needles = g_ptr_array_new ();

  for (const char *n = first; n != NULL; n = va_arg (ap, const char *))
    g_ptr_array_add (needles, (gpointer) n);
  g_ptr_array_add (needles, NULL);
  return needles;
}

/* Waits (bounded) for a stanza <@name/> holding every one of @needles;
 * consumes it.  Returns: (transfer full) its text, or NULL. */
static inline char *
take_stanza (Client *c, const char *name, const char *const *needles)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gsize off, len;

  while (!find_stanza_from (c, 0, name, needles, &off, &len))
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (c->eof || left <= 0 || !client_read (c, left))
        {
          g_test_message ("expected <%s/> with %s…; got: %.3000s", name,
                          needles[0] != NULL ? needles[0] : "", c->in->str);
          return NULL;
        }
    }
  char *seg = g_strndup (c->in->str + off, len);
  g_string_erase (c->in, (gssize) off, (gssize) len);
  return seg;
}

/* take_stanza with the needles as arguments; TRUE when one came. */
G_GNUC_NULL_TERMINATED static inline gboolean
expect_stanza (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  g_autofree char *seg = take_stanza (c, name, (const char *const *) needles->pdata);

  return seg != NULL;
}

/* How many complete <@name/> holding every needle are in the buffer now. */
G_GNUC_NULL_TERMINATED static inline guint
count_stanzas (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  gsize off = 0, len = 0, from = 0;
  guint n = 0;

  while (find_stanza_from (c, from, name, (const char *const *) needles->pdata, &off, &len))
    {
      n++;
      from = off + len;
    }
  return n;
}

/* A ping round trip: everything the server sent @c before is in the buffer. */
static inline void
sync_client (Client *c)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("sync-%u", ++serial);
  g_autofree char *ping = g_strdup_printf ("<iq type='get' id='%s' to='localhost'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>", id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);

  client_send (c, ping);
  g_assert_true (expect_stanza (c, "iq", needle, NULL));
}

/* Two round trips of @sender: the server has handled what @sender sent
 * before, and finished writing what that made for other clients (their
 * bytes left in an earlier main-loop pass than the second answer). */
static inline void
settle (Client *sender)
{
  sync_client (sender);
  sync_client (sender);
}

/* Syncs and forgets everything received so far. */
static inline void
drain (Client *c)
{
  sync_client (c);
  g_string_truncate (c->in, 0);
}

/* Reads whatever has already arrived, without waiting. */
static inline void
client_poll (Client *c)
{
  while (client_read (c, 0) && !c->eof)
    ;
}

/* Logs @user (password "pw-USER") in as @resource. */
static inline Client *
login (Mynad *d, const char *user, const char *resource)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (d, user, pw, resource);

  g_assert_nonnull (c);
  return c;
}

/* Sends available presence with @extra inside and waits for its echo. */
static inline void
go_available (Client *c, const char *user, const char *resource, const char *extra)
{
  g_autofree char *p = g_strdup_printf ("<presence>%s</presence>", extra != NULL ? extra : "");
  g_autofree char *from = g_strdup_printf ("from='%s@localhost/%s'", user, resource);

  client_send (c, p);
  g_assert_true (expect_stanza (c, "presence", from, NULL));
}

/* Asks for the roster (the session then gets roster pushes). */
static inline void
roster_get (Client *c)
{
  client_send (c, "<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='rg'", "type='result'", NULL));
}

/* Mutual presence subscription between @a (user @an) and @b (user @bn). */
static inline void
make_friends (Client *a, const char *an, Client *b, const char *bn)
{
  g_autofree char *ajid = g_strdup_printf ("%s@localhost", an);
  g_autofree char *bjid = g_strdup_printf ("%s@localhost", bn);
  g_autofree char *ajid_attr = g_strdup_printf ("jid='%s'", ajid);
  g_autofree char *bjid_attr = g_strdup_printf ("jid='%s'", bjid);
  g_autofree char *s1 = g_strdup_printf ("<presence type='subscribe' to='%s'/>", bjid);
  g_autofree char *s2 = g_strdup_printf ("<presence type='subscribed' to='%s'/>", ajid);
  g_autofree char *s3 = g_strdup_printf ("<presence type='subscribe' to='%s'/>", ajid);
  g_autofree char *s4 = g_strdup_printf ("<presence type='subscribed' to='%s'/>", bjid);

  roster_get (a);
  roster_get (b);
  client_send (a, s1);
  client_send (b, s2);
  client_send (b, s3);
  client_send (a, s4);
  g_assert_true (expect_stanza (a, "iq", bjid_attr, "subscription='both'", NULL));
  g_assert_true (expect_stanza (b, "iq", ajid_attr, "subscription='both'", NULL));
  drain (a);
  drain (b);
}
