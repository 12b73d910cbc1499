/* api-body.c: the JSON bodies of the HTTP API (include/myna/api.h).
 *
 * Bytes from the network go through three gates before a field is used:
 * the whole body must be valid UTF-8 and within MYNA_API_MAX_BODY; a small
 * strict RFC 8259 lexer checks the grammar with bounded nesting (json-glib
 * alone accepts comments, single quotes and raw control characters,
 * silently cuts strings at \u0000, lets lone surrogates through as broken
 * UTF-8 and recurses without a depth limit); then json-glib builds the
 * tree, and each known member is checked for type, length, UTF-8, XML
 * characters and, for JIDs, the JID profiles. */
#include <myna/api.h>

#include <json-glib/json-glib.h>
#include <string.h>

G_DEFINE_QUARK (myna-api-error-quark, myna_api_error)

/* ---- the strict lexer ----------------------------------------------------- */

typedef struct {
  const guchar *start;
  const guchar *p;
  const guchar *end;
  guint         depth;
  GError      **error;
} Lexer;

static gboolean lex_value (Lexer *lx);

static gboolean G_GNUC_PRINTF (2, 3)
lex_fail (Lexer *lx, const char *format, ...)
{
  va_list ap;
  g_autofree char *what = NULL;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (lx->error, MYNA_API_ERROR, MYNA_API_ERROR_SYNTAX,
               "not valid JSON: %s at byte %" G_GSIZE_FORMAT, what,
               (gsize) (lx->p - lx->start));
  return FALSE;
}

static gboolean
lex_unexpected (Lexer *lx, const char *expected)
{
  if (lx->p >= lx->end)
    return lex_fail (lx, "the body ends where %s was expected", expected);
  if (*lx->p >= 0x20 && *lx->p < 0x7f)
    return lex_fail (lx, "'%c' where %s was expected", *lx->p, expected);
  return lex_fail (lx, "byte 0x%02x where %s was expected", *lx->p, expected);
}

static void
lex_space (Lexer *lx)
{
  while (lx->p < lx->end
         && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
    lx->p++;
}

/* Four hex digits at lx->p into *@out. */
static gboolean
lex_hex4 (Lexer *lx, guint *out)
{
  *out = 0;
  if (lx->end - lx->p < 4)
    return lex_fail (lx, "a \\u escape cut short");
  for (guint i = 0; i < 4; i++)
    {
      int v = g_ascii_xdigit_value (lx->p[i]);
      if (v < 0)
        return lex_fail (lx, "a \\u escape with a non-hex digit");
      *out = (*out << 4) | (guint) v;
    }
  lx->p += 4;
  return TRUE;
}

/* After "\u": one escape, a surrogate pair being two. */
static gboolean
lex_unicode_escape (Lexer *lx)
{
  guint cp, low;

  if (!lex_hex4 (lx, &cp))
    return FALSE;
  if (cp == 0)
    return lex_fail (lx, "\\u0000 (NUL is not allowed)");
  if (cp >= 0xdc00 && cp <= 0xdfff)
    return lex_fail (lx, "a lone low surrogate");
  if (cp < 0xd800 || cp > 0xdbff)
    return TRUE;
  if (lx->end - lx->p < 2 || lx->p[0] != '\\' || lx->p[1] != 'u')
    return lex_fail (lx, "a high surrogate without its low half");
  lx->p += 2;
  if (!lex_hex4 (lx, &low))
    return FALSE;
  if (low < 0xdc00 || low > 0xdfff)
    return lex_fail (lx, "a high surrogate without its low half");
  return TRUE;
}

static gboolean
lex_string (Lexer *lx)
{
  lx->p++;                      /* the opening quote */
  while (lx->p < lx->end)
    {
      guchar c = *lx->p;

      if (c == '"')
        {
          lx->p++;
          return TRUE;
        }
      if (c < 0x20)
        return lex_fail (lx, "a raw control character in a string");
      if (c != '\\')
        {
          lx->p++;
          continue;
        }
      lx->p++;
      if (lx->p >= lx->end)
        break;
      c = *lx->p++;
      if (c == 'u')
        {
          if (!lex_unicode_escape (lx))
            return FALSE;
        }
      else if (strchr ("\"\\/bfnrt", c) == NULL || c == '\0')
        {
          lx->p--;
          return lex_fail (lx, "an unknown escape");
        }
    }
  return lex_fail (lx, "an unterminated string");
}

static gboolean
lex_digits (Lexer *lx)
{
  const guchar *from = lx->p;

  while (lx->p < lx->end && g_ascii_isdigit (*lx->p))
    lx->p++;
  return lx->p > from ? TRUE : lex_unexpected (lx, "a digit");
}

static gboolean
lex_number (Lexer *lx)
{
  if (*lx->p == '-')
    lx->p++;
  if (lx->p < lx->end && *lx->p == '0')
    lx->p++;
  else if (!lex_digits (lx))
    return FALSE;
  if (lx->p < lx->end && *lx->p == '.')
    {
      lx->p++;
      if (!lex_digits (lx))
        return FALSE;
    }
  if (lx->p < lx->end && (*lx->p == 'e' || *lx->p == 'E'))
    {
      lx->p++;
      if (lx->p < lx->end && (*lx->p == '+' || *lx->p == '-'))
        lx->p++;
      if (!lex_digits (lx))
        return FALSE;
    }
  return TRUE;
}

static gboolean
lex_literal (Lexer *lx, const char *word)
{
  gsize n = strlen (word);

  if ((gsize) (lx->end - lx->p) < n || memcmp (lx->p, word, n) != 0)
    return lex_unexpected (lx, "a value");
  lx->p += n;
  return TRUE;
}

/* An array or object; @close is ']' or '}'. */
static gboolean
lex_container (Lexer *lx, guchar close)
{
  gboolean object = close == '}';

  if (++lx->depth > MYNA_API_MAX_DEPTH)
    {
      g_set_error (lx->error, MYNA_API_ERROR, MYNA_API_ERROR_TOO_LARGE,
                   "JSON nested deeper than %d levels", MYNA_API_MAX_DEPTH);
      return FALSE;
    }
  lx->p++;
  lex_space (lx);
  if (lx->p < lx->end && *lx->p == close)
    {
      lx->p++;
      lx->depth--;
      return TRUE;
    }
  for (;;)
    {
      if (object)
        {
          if (lx->p >= lx->end || *lx->p != '"')
            return lex_unexpected (lx, "a member name");
          if (!lex_string (lx))
            return FALSE;
          lex_space (lx);
          if (lx->p >= lx->end || *lx->p != ':')
            return lex_unexpected (lx, "':'");
          lx->p++;
          lex_space (lx);
        }
      if (!lex_value (lx))
        return FALSE;
      lex_space (lx);
      if (lx->p < lx->end && *lx->p == close)
        break;
      if (lx->p >= lx->end || *lx->p != ',')
        return lex_unexpected (lx, object ? "',' or '}'" : "',' or ']'");
      lx->p++;
      lex_space (lx);
    }
  lx->p++;
  lx->depth--;
  return TRUE;
}

static gboolean
lex_value (Lexer *lx)
{
  if (lx->p >= lx->end)
    return lex_unexpected (lx, "a value");
  switch (*lx->p)
    {
    case '{':
      return lex_container (lx, '}');
    case '[':
      return lex_container (lx, ']');
    case '"':
      return lex_string (lx);
    case 't':
      return lex_literal (lx, "true");
    case 'f':
      return lex_literal (lx, "false");
    case 'n':
      return lex_literal (lx, "null");
    default:
      if (*lx->p == '-' || g_ascii_isdigit (*lx->p))
        return lex_number (lx);
      return lex_unexpected (lx, "a value");
    }
}

/* The whole body: one value, white space around it. */
static gboolean
api_lex (const char *body, gsize len, GError **error)
{
  Lexer lx = { (const guchar *) body, (const guchar *) body,
               (const guchar *) body + len, 0, error };

  lex_space (&lx);
  if (!lex_value (&lx))
    return FALSE;
  lex_space (&lx);
  if (lx.p != lx.end)
    return lex_unexpected (&lx, "the end of the body");
  return TRUE;
}

/* ---- the tree ------------------------------------------------------------- */

/* Counts members as json-glib adds them: an object whose size ends below
 * its count had a member named twice. */
static void
api_count_member (JsonParser *parser, JsonObject *object, const char *name,
                  gpointer user_data)
{
  GHashTable *counts = user_data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, object));

  g_hash_table_insert (counts, object, GUINT_TO_POINTER (n + 1));
}

/* The top-level object of @body, or NULL with @error.
 * Returns: (transfer full) */
static JsonObject *
api_parse_object (const char *body, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GHashTable) counts = NULL;
  g_autoptr(GError) local = NULL;
  JsonNode *root;
  JsonObject *object;

  g_return_val_if_fail (body != NULL || len == 0, NULL);

  if (len > MYNA_API_MAX_BODY)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_TOO_LARGE,
                   "the body is %" G_GSIZE_FORMAT " bytes, over the limit of %d",
                   len, MYNA_API_MAX_BODY);
      return NULL;
    }
  if (!g_utf8_validate_len (body, len, NULL))
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_BAD_UTF8,
                           "the body is not valid UTF-8");
      return NULL;
    }
  if (!api_lex (body, len, error))
    return NULL;
  parser = json_parser_new_immutable ();
  counts = g_hash_table_new (NULL, NULL);
  g_signal_connect (parser, "object-member", G_CALLBACK (api_count_member), counts);
  if (!json_parser_load_from_data (parser, body, (gssize) len, &local))
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_SYNTAX,
                   "not valid JSON: %s", local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_NOT_OBJECT,
                           "the body must be a JSON object");
      return NULL;
    }
  object = json_node_get_object (root);
  if (GPOINTER_TO_UINT (g_hash_table_lookup (counts, object)) != json_object_get_size (object))
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_DUPLICATE,
                           "a member is named twice");
      return NULL;
    }
  return json_object_ref (object);
}

gboolean
myna_api_text_is_xml (const char *text)
{
  g_return_val_if_fail (text != NULL, FALSE);

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r')
          || c == 0xfffe || c == 0xffff)
        return FALSE;
    }
  return TRUE;
}

/* Member @name as a string: *@out borrows it, NULL when absent (or null
 * and @optional).  FALSE with @error when required and absent, not a
 * string, too long, or not text. */
static gboolean
api_string (JsonObject *object, const char *name, gboolean optional, gsize max,
            const char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, name);
  const char *value;
  gsize len;

  *out = NULL;
  if (node == NULL || (optional && JSON_NODE_HOLDS_NULL (node)))
    {
      if (optional)
        return TRUE;
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_MISSING,
                   "the member \"%s\" is required", name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_TYPE,
                   "the member \"%s\" must be a string", name);
      return FALSE;
    }
  value = json_node_get_string (node);
  len = strlen (value);
  if (len > max)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_TOO_LARGE,
                   "the member \"%s\" is %" G_GSIZE_FORMAT " bytes, over the limit of %"
                   G_GSIZE_FORMAT, name, len, max);
      return FALSE;
    }
  if (!g_utf8_validate_len (value, len, NULL))
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_BAD_UTF8,
                   "the member \"%s\" is not valid UTF-8", name);
      return FALSE;
    }
  if (!myna_api_text_is_xml (value))
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"%s\" holds a control character", name);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* Member @name as a JID (or NULL when optional and absent). */
static gboolean
api_jid (JsonObject *object, const char *name, gboolean optional, MynaJid **out,
         GError **error)
{
  g_autoptr(GError) local = NULL;
  const char *text;

  *out = NULL;
  if (!api_string (object, name, optional, MYNA_API_MAX_JID, &text, error))
    return FALSE;
  if (text == NULL)
    return TRUE;
  *out = myna_jid_parse (text, &local);
  if (*out == NULL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"%s\" is not a valid JID: %s", name, local->message);
      return FALSE;
    }
  return TRUE;
}

/* ---- messages ------------------------------------------------------------- */

void
myna_api_message_clear (MynaApiMessage *msg)
{
  if (msg == NULL)
    return;
  g_clear_pointer (&msg->from, myna_jid_unref);
  g_clear_pointer (&msg->to, myna_jid_unref);
  g_clear_pointer (&msg->body, g_free);
  g_clear_pointer (&msg->subject, g_free);
  msg->type = NULL;
}

static gboolean
api_message_type (JsonObject *object, MynaApiMessage *out, GError **error)
{
  static const char *const types[] = { "chat", "normal", "headline" };
  const char *type;

  if (!api_string (object, "type", TRUE, 16, &type, error))
    return FALSE;
  if (type == NULL)
    {
      out->type = types[0];
      return TRUE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (strcmp (type, types[i]) == 0)
      {
        out->type = types[i];
        return TRUE;
      }
  g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                       "the member \"type\" must be \"chat\", \"normal\" or \"headline\"");
  return FALSE;
}

static gboolean
api_message_fields (JsonObject *object, MynaApiMessage *out, GError **error)
{
  const char *body, *subject;

  if (!api_jid (object, "to", FALSE, &out->to, error)
      || !api_jid (object, "from", TRUE, &out->from, error)
      || !api_message_type (object, out, error)
      || !api_string (object, "body", FALSE, MYNA_API_MAX_TEXT, &body, error)
      || !api_string (object, "subject", TRUE, MYNA_API_MAX_SUBJECT, &subject, error))
    return FALSE;
  if (*body == '\0')
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                           "the member \"body\" must not be empty");
      return FALSE;
    }
  out->body = g_strdup (body);
  out->subject = g_strdup (subject);
  return TRUE;
}

gboolean
myna_api_parse_message (const char *body, gsize len, MynaApiMessage *out,
                        GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr(JsonObject) object = NULL;

  memset (out, 0, sizeof *out);
  object = api_parse_object (body, len, error);
  if (object == NULL)
    return FALSE;
  if (!api_message_fields (object, out, error))
    {
      myna_api_message_clear (out);
      return FALSE;
    }
  return TRUE;
}

MynaStanza *
myna_api_message_to_stanza (const MynaApiMessage *msg, const MynaJid *default_from,
                            const char *id)
{
  g_return_val_if_fail (msg != NULL && msg->to != NULL && msg->body != NULL, NULL);
  g_return_val_if_fail (msg->from != NULL || default_from != NULL, NULL);

  MynaStanza *stanza = myna_stanza_new ("message", MYNA_NS_CLIENT);
  const MynaJid *from = msg->from != NULL ? msg->from : default_from;

  myna_stanza_set_attr (stanza, "from", myna_jid_to_string (from));
  myna_stanza_set_attr (stanza, "to", myna_jid_to_string (msg->to));
  myna_stanza_set_attr (stanza, "type", msg->type != NULL ? msg->type : "chat");
  if (id != NULL)
    myna_stanza_set_attr (stanza, "id", id);
  if (msg->subject != NULL)
    myna_stanza_add_text_child (stanza, "subject", msg->subject);
  myna_stanza_add_text_child (stanza, "body", msg->body);
  return stanza;
}

/* ---- users ---------------------------------------------------------------- */

void
myna_api_user_clear (MynaApiUser *user)
{
  if (user == NULL)
    return;
  if (user->password != NULL)
    memset (user->password, 0, strlen (user->password));
  g_clear_pointer (&user->password, g_free);
  g_clear_pointer (&user->user, g_free);
  g_clear_pointer (&user->host, g_free);
}

/* A normalised part from member @name with @prep, or NULL when optional
 * and absent. */
static gboolean
api_part (JsonObject *object, const char *name, gboolean optional,
          char *(*prep) (const char *, GError **), char **out, GError **error)
{
  g_autoptr(GError) local = NULL;
  const char *text;

  *out = NULL;
  if (!api_string (object, name, optional, 1023, &text, error))
    return FALSE;
  if (text == NULL)
    return TRUE;
  *out = prep (text, &local);
  if (*out == NULL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"%s\" is not valid: %s", name, local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
api_user_fields (JsonObject *object, MynaApiUser *out, GError **error)
{
  const char *password;

  if (!api_part (object, "user", FALSE, myna_jid_prep_local, &out->user, error)
      || !api_part (object, "host", TRUE, myna_jid_prep_domain, &out->host, error)
      || !api_string (object, "password", FALSE, MYNA_API_MAX_PASSWORD, &password, error))
    return FALSE;
  for (const char *p = password; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                             "the member \"password\" holds a control character");
        return FALSE;
      }
  if (*password == '\0')
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                           "the member \"password\" must not be empty");
      return FALSE;
    }
  out->password = g_strdup (password);
  return TRUE;
}

gboolean
myna_api_parse_user (const char *body, gsize len, MynaApiUser *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr(JsonObject) object = NULL;

  memset (out, 0, sizeof *out);
  object = api_parse_object (body, len, error);
  if (object == NULL)
    return FALSE;
  if (!api_user_fields (object, out, error))
    {
      myna_api_user_clear (out);
      return FALSE;
    }
  return TRUE;
}

/* ---- notifications ---------------------------------------------------------- */

void
myna_api_notification_clear (MynaApiNotification *n)
{
  if (n == NULL)
    return;
  g_clear_pointer (&n->to, g_ptr_array_unref);
  g_clear_pointer (&n->title, g_free);
  g_clear_pointer (&n->message, g_free);
  g_clear_pointer (&n->uri, g_free);
  n->broadcast = FALSE;
  n->ttl = 0;
}

/* @text as a recipient: the bare JID of an account, added to @to unless
 * there already. */
static gboolean
api_recipient (const char *text, GPtrArray *to, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(MynaJid) jid = NULL;

  if (strlen (text) > MYNA_API_MAX_JID)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_TOO_LARGE,
                   "a recipient of \"to\" is over the limit of %d bytes", MYNA_API_MAX_JID);
      return FALSE;
    }
  jid = myna_jid_parse (text, &local);
  if (jid == NULL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "\"to\" holds an invalid JID: %s", local->message);
      return FALSE;
    }
  if (myna_jid_get_local (jid) == NULL || myna_jid_get_resource (jid) != NULL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "\"to\" must name accounts by their bare JIDs (user@host), not %s",
                   myna_jid_to_string (jid));
      return FALSE;
    }
  for (guint i = 0; i < to->len; i++)
    if (myna_jid_equal (to->pdata[i], jid))
      return TRUE;
  g_ptr_array_add (to, g_steal_pointer (&jid));
  return TRUE;
}

/* "to": a JID, an array of JIDs, or "*". */
static gboolean
api_recipients (JsonObject *object, MynaApiNotification *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, "to");
  g_autoptr(GPtrArray) to = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
  g_autoptr(GError) local = NULL;
  const char *text;

  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      guint n = json_array_get_length (array);

      if (n == 0 || n > MYNA_API_MAX_RECIPIENTS)
        {
          g_set_error (error, MYNA_API_ERROR, n == 0 ? MYNA_API_ERROR_INVALID
                       : MYNA_API_ERROR_TOO_LARGE,
                       "\"to\" must name 1 to %d recipients", MYNA_API_MAX_RECIPIENTS);
          return FALSE;
        }
      for (guint i = 0; i < n; i++)
        {
          JsonNode *item = json_array_get_element (array, i);

          if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
            {
              g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_TYPE,
                                   "the items of \"to\" must be strings");
              return FALSE;
            }
          if (!api_recipient (json_node_get_string (item), to, error))
            return FALSE;
        }
      out->to = g_steal_pointer (&to);
      return TRUE;
    }
  if (!api_string (object, "to", FALSE, MYNA_API_MAX_JID, &text, &local))
    {
      if (g_error_matches (local, MYNA_API_ERROR, MYNA_API_ERROR_TYPE))
        g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_TYPE,
                             "the member \"to\" must be a JID, an array of JIDs or \"*\"");
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (strcmp (text, "*") == 0)
    {
      out->broadcast = TRUE;
      return TRUE;
    }
  if (!api_recipient (text, to, error))
    return FALSE;
  out->to = g_steal_pointer (&to);
  return TRUE;
}

/* "ttl": absent, null, or an integer of seconds within bounds. */
static gboolean
api_ttl (JsonObject *object, gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, "ttl");
  gint64 ttl;

  *out = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_TYPE,
                           "the member \"ttl\" must be an integer (seconds)");
      return FALSE;
    }
  ttl = json_node_get_int (node);
  if (ttl < 1 || ttl > MYNA_API_MAX_TTL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"ttl\" must be 1 to %d seconds", MYNA_API_MAX_TTL);
      return FALSE;
    }
  *out = ttl;
  return TRUE;
}

static gboolean
api_notification_fields (JsonObject *object, MynaApiNotification *out, GError **error)
{
  const char *title, *message, *uri;

  if (!api_recipients (object, out, error)
      || !api_string (object, "title", FALSE, MYNA_API_MAX_TITLE, &title, error)
      || !api_string (object, "message", FALSE, MYNA_API_MAX_TEXT, &message, error)
      || !api_string (object, "uri", TRUE, MYNA_API_MAX_URI, &uri, error)
      || !api_ttl (object, &out->ttl, error))
    return FALSE;
  if (*title == '\0' || *message == '\0')
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"%s\" must not be empty", *title == '\0' ? "title" : "message");
      return FALSE;
    }
  out->title = g_strdup (title);
  out->message = g_strdup (message);
  out->uri = g_strdup (uri);
  return TRUE;
}

gboolean
myna_api_parse_notification (const char *body, gsize len, MynaApiNotification *out,
                             GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr(JsonObject) object = NULL;

  memset (out, 0, sizeof *out);
  object = api_parse_object (body, len, error);
  if (object == NULL)
    return FALSE;
  if (!api_notification_fields (object, out, error))
    {
      myna_api_notification_clear (out);
      return FALSE;
    }
  return TRUE;
}

/* ---- rooms ------------------------------------------------------------------ */

void
myna_api_muc_room_clear (MynaApiMucRoom *room)
{
  if (room == NULL)
    return;
  g_clear_pointer (&room->room, g_free);
  g_clear_pointer (&room->service, g_free);
  g_clear_pointer (&room->owner, myna_jid_unref);
  g_clear_pointer (&room->name, g_free);
  room->persistent = -1;
  room->public_room = -1;
}

/* Member @name as a boolean: -1 when absent or null. */
static gboolean
api_bool (JsonObject *object, const char *name, int *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, name);

  *out = -1;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_TYPE,
                   "the member \"%s\" must be true or false", name);
      return FALSE;
    }
  *out = json_node_get_boolean (node) ? 1 : 0;
  return TRUE;
}

/* "room": a localpart, or a room JID whose domain is the service. */
static gboolean
api_room_name (JsonObject *object, MynaApiMucRoom *out, GError **error)
{
  g_autoptr(GError) local = NULL;
  const char *text;

  if (!api_string (object, "room", FALSE, MYNA_API_MAX_JID, &text, error))
    return FALSE;
  if (strchr (text, '@') == NULL)
    {
      out->room = *text != '\0' ? myna_jid_prep_local (text, &local) : NULL;
      if (out->room == NULL)
        g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                     "the member \"room\" is not a valid room name%s%s",
                     local != NULL ? ": " : "", local != NULL ? local->message : "");
      return out->room != NULL;
    }
  g_autoptr(MynaJid) jid = myna_jid_parse (text, &local);
  if (jid == NULL || myna_jid_get_local (jid) == NULL || myna_jid_get_resource (jid) != NULL)
    {
      g_set_error (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                   "the member \"room\" is not a room JID (room@service)%s%s",
                   local != NULL ? ": " : "", local != NULL ? local->message : "");
      return FALSE;
    }
  out->room = g_strdup (myna_jid_get_local (jid));
  if (out->service != NULL && strcmp (out->service, myna_jid_get_domain (jid)) != 0)
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                           "the members \"room\" and \"service\" name different services");
      return FALSE;
    }
  g_free (out->service);
  out->service = g_strdup (myna_jid_get_domain (jid));
  return TRUE;
}

static gboolean
api_muc_room_fields (JsonObject *object, MynaApiMucRoom *out, GError **error)
{
  const char *name;

  if (!api_part (object, "service", TRUE, myna_jid_prep_domain, &out->service, error)
      || !api_room_name (object, out, error)
      || !api_jid (object, "owner", TRUE, &out->owner, error)
      || !api_bool (object, "persistent", &out->persistent, error)
      || !api_bool (object, "public", &out->public_room, error)
      || !api_string (object, "name", TRUE, MYNA_API_MAX_SUBJECT, &name, error))
    return FALSE;
  if (out->owner != NULL
      && (myna_jid_get_local (out->owner) == NULL || myna_jid_get_resource (out->owner) != NULL))
    {
      g_set_error_literal (error, MYNA_API_ERROR, MYNA_API_ERROR_INVALID,
                           "the member \"owner\" must be a bare JID with a localpart");
      return FALSE;
    }
  out->name = g_strdup (name);
  return TRUE;
}

gboolean
myna_api_parse_muc_room (const char *body, gsize len, MynaApiMucRoom *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr(JsonObject) object = NULL;

  memset (out, 0, sizeof *out);
  out->persistent = -1;
  out->public_room = -1;
  object = api_parse_object (body, len, error);
  if (object == NULL)
    return FALSE;
  if (!api_muc_room_fields (object, out, error))
    {
      myna_api_muc_room_clear (out);
      return FALSE;
    }
  return TRUE;
}
