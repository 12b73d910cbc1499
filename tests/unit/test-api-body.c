/* test-api-body.c: unit tests for the HTTP API's JSON body parsers
 * (core/api-body.c): good message and user bodies with their defaults and
 * normalisation, unknown members ignored, and hostile bodies — not JSON,
 * JSON json-glib alone would take (comments, single quotes, raw control
 * characters, \u0000, lone surrogates), deep nesting, oversize bodies and
 * members, duplicate members, wrong types, bad JIDs, control characters —
 * each refused with its error code and the output left cleared; and the
 * <message/> built from a body surviving serialisation. */
#include <myna/api.h>
#include <myna/xmlstream.h>

#include <string.h>

static char *
repeat (const char *unit, guint n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append (s, unit);
  return g_string_free (s, FALSE);
}

/* ---- messages ----------------------------------------------------------------- */

static void
assert_message_bad_len (const char *body, gsize len, MynaApiError code)
{
  g_autoptr(GError) error = NULL;
  MynaApiMessage msg;

  memset (&msg, 0xa5, sizeof msg);   /* the parser must clear it */
  g_assert_false (myna_api_parse_message (body, len, &msg, &error));
  g_assert_error (error, MYNA_API_ERROR, (int) code);
  g_assert_cmpstr (error->message, !=, "");
  g_assert_null (msg.to);
  g_assert_null (msg.from);
  g_assert_null (msg.body);
  g_assert_null (msg.subject);
  g_assert_null (msg.type);
}

static void
assert_message_bad (const char *body, MynaApiError code)
{
  assert_message_bad_len (body, strlen (body), code);
}

static void
test_message_minimal (void)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body = "{\"to\": \"Bob@LocalHost\", \"body\": \"hi\"}";

  g_assert_true (myna_api_parse_message (body, strlen (body), &msg, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (msg.to), ==, "bob@localhost");
  g_assert_null (msg.from);
  g_assert_cmpstr (msg.type, ==, "chat");
  g_assert_cmpstr (msg.body, ==, "hi");
  g_assert_null (msg.subject);
}

static void
test_message_full (void)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body =
    " {\n\t\"from\": \"admin@localhost/api\", \"to\": \"bob@localhost/Phone\",\r\n"
    "  \"type\": \"headline\", \"subject\": \"S\\u00fcbject\", \"body\": \"b\"} ";

  g_assert_true (myna_api_parse_message (body, strlen (body), &msg, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (msg.from), ==, "admin@localhost/api");
  g_assert_cmpstr (myna_jid_to_string (msg.to), ==, "bob@localhost/Phone");
  g_assert_cmpstr (msg.type, ==, "headline");
  g_assert_cmpstr (msg.subject, ==, "Sübject");
  g_assert_cmpstr (msg.body, ==, "b");
}

static void
test_message_escapes (void)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body = "{\"to\": \"bob@localhost\", \"type\": \"normal\","
                     " \"body\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/\\t\\n\\r\"}";

  g_assert_true (myna_api_parse_message (body, strlen (body), &msg, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (msg.type, ==, "normal");
  g_assert_cmpstr (msg.body, ==, "café 😀 \"q\" \\ /\t\n\r");
}

static void
test_message_unknown_and_null (void)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body = "{\"x\": [1, -2.5e+3, {\"y\": null}, true, false], \"to\": \"bob@localhost\","
                     " \"from\": null, \"subject\": null, \"type\": null, \"body\": \"b\","
                     " \"unknown\": {\"body\": 5}}";

  g_assert_true (myna_api_parse_message (body, strlen (body), &msg, &error));
  g_assert_no_error (error);
  g_assert_null (msg.from);
  g_assert_null (msg.subject);
  g_assert_cmpstr (msg.type, ==, "chat");
  g_assert_cmpstr (msg.body, ==, "b");
}

static void
test_message_not_json (void)
{
  assert_message_bad ("", MYNA_API_ERROR_SYNTAX);
  assert_message_bad (" \n\t ", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\"", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\"} x", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\"}{}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\",}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{to: \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": 'a@b', \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", /* c */ \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\"} // c", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\" \"a@b\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\" \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": 01, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": 1., \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": .5, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": 1e, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": -, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": +1, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": NaN, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": tru, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": True, \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": [1,], \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"n\": [1 2], \"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("\xef\xbb\xbf{\"to\": \"a@b\", \"body\": \"x\"}", MYNA_API_ERROR_SYNTAX);
}

static void
test_message_not_object (void)
{
  assert_message_bad ("[]", MYNA_API_ERROR_NOT_OBJECT);
  assert_message_bad ("[{\"to\": \"a@b\", \"body\": \"x\"}]", MYNA_API_ERROR_NOT_OBJECT);
  assert_message_bad ("\"to\"", MYNA_API_ERROR_NOT_OBJECT);
  assert_message_bad ("42", MYNA_API_ERROR_NOT_OBJECT);
  assert_message_bad ("null", MYNA_API_ERROR_NOT_OBJECT);
  assert_message_bad ("true", MYNA_API_ERROR_NOT_OBJECT);
}

/* What json-glib alone would let through. */
static void
test_message_strings (void)
{
  /* A raw control character inside a string. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\ty\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\ny\"}", MYNA_API_ERROR_SYNTAX);
  /* json-glib cuts the string at \u0000 and says nothing. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\\u0000y\"}", MYNA_API_ERROR_SYNTAX);
  /* Lone surrogates would become invalid UTF-8. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\\ud800y\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\\udc00y\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\ud800\\u0041\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\ud800\"}", MYNA_API_ERROR_SYNTAX);
  /* Bad escapes. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\x41\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\u12\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\u12g4\"}", MYNA_API_ERROR_SYNTAX);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\", MYNA_API_ERROR_SYNTAX);
  /* Control characters by escape reach the checks of text for XML. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\u0001\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\b\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\\uFFFE\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\xef\xbf\xbf\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"subject\": \"\\u001f\"}",
                      MYNA_API_ERROR_INVALID);
}

static void
test_message_utf8 (void)
{
  static const char nul[] = "{\"to\": \"a@b\", \"body\": \"x\0y\"}";

  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\xff\"}", MYNA_API_ERROR_BAD_UTF8);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\xc3\"}", MYNA_API_ERROR_BAD_UTF8);
  /* Overlong and surrogate encodings. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\xc0\xaf\"}", MYNA_API_ERROR_BAD_UTF8);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\xed\xa0\x80\"}", MYNA_API_ERROR_BAD_UTF8);
  /* A NUL byte inside the body. */
  assert_message_bad_len (nul, sizeof nul - 1, MYNA_API_ERROR_BAD_UTF8);
  assert_message_bad_len (nul, sizeof nul, MYNA_API_ERROR_BAD_UTF8);
}

static void
test_message_depth (void)
{
  g_autofree char *open = repeat ("[", 14);
  g_autofree char *close = repeat ("]", 14);
  g_autofree char *ok = g_strdup_printf ("{\"n\": [%s%s], \"to\": \"a@b\", \"body\": \"x\"}",
                                         open, close);
  g_autofree char *open2 = repeat ("[", 15);
  g_autofree char *close2 = repeat ("]", 15);
  g_autofree char *deep = g_strdup_printf ("{\"n\": [%s%s], \"to\": \"a@b\", \"body\": \"x\"}",
                                           open2, close2);
  g_autofree char *huge = repeat ("[", MYNA_API_MAX_BODY);
  g_autofree char *objects = repeat ("{\"a\":", 5000);
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;

  /* 16 levels (the object, the array, 14 inner arrays) pass; 17 do not. */
  g_assert_true (myna_api_parse_message (ok, strlen (ok), &msg, &error));
  g_assert_no_error (error);
  assert_message_bad (deep, MYNA_API_ERROR_TOO_LARGE);
  /* json-glib would recurse through all of these and overflow the stack. */
  assert_message_bad (huge, MYNA_API_ERROR_TOO_LARGE);
  assert_message_bad (objects, MYNA_API_ERROR_TOO_LARGE);
}

static void
test_message_sizes (void)
{
  g_autofree char *text = repeat ("a", MYNA_API_MAX_TEXT);
  g_autofree char *ok = g_strdup_printf ("{\"to\": \"a@b\", \"body\": \"%s\"}", text);
  g_autofree char *over = g_strdup_printf ("{\"to\": \"a@b\", \"body\": \"%sa\"}", text);
  g_autofree char *subject = repeat ("s", MYNA_API_MAX_SUBJECT + 1);
  g_autofree char *long_subject = g_strdup_printf ("{\"to\": \"a@b\", \"body\": \"x\", "
                                                   "\"subject\": \"%s\"}", subject);
  g_autofree char *pad = repeat (" ", MYNA_API_MAX_BODY);
  g_autofree char *padded = g_strdup_printf ("{\"to\": \"a@b\", \"body\": \"x\"}%s", pad);
  g_autofree char *local = repeat ("l", 1023);
  g_autofree char *domain = repeat ("d", 63);
  g_autofree char *resource = repeat ("r", 1024);
  g_autofree char *long_jid = g_strdup_printf ("{\"to\": \"%s@%s/%s%s\", \"body\": \"x\"}",
                                               local, domain, resource, resource);
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;

  g_assert_true (myna_api_parse_message (ok, strlen (ok), &msg, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (msg.body), ==, MYNA_API_MAX_TEXT);
  assert_message_bad (over, MYNA_API_ERROR_TOO_LARGE);
  assert_message_bad (long_subject, MYNA_API_ERROR_TOO_LARGE);
  assert_message_bad (padded, MYNA_API_ERROR_TOO_LARGE);
  assert_message_bad (long_jid, MYNA_API_ERROR_TOO_LARGE);
}

static void
test_message_members (void)
{
  assert_message_bad ("{\"body\": \"x\"}", MYNA_API_ERROR_MISSING);
  assert_message_bad ("{\"to\": \"a@b\"}", MYNA_API_ERROR_MISSING);
  assert_message_bad ("{\"to\": null, \"body\": \"x\"}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": null}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": 5, \"body\": \"x\"}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": [\"a@b\"], \"body\": \"x\"}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": {\"text\": \"x\"}}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": true}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"type\": 1}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"from\": false}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"subject\": 2}", MYNA_API_ERROR_TYPE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"type\": \"groupchat\"}",
                      MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"type\": \"Chat\"}",
                      MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"type\": \"error\"}",
                      MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"\"}", MYNA_API_ERROR_INVALID);
  /* Member names are compared after unescaping. */
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"to\": \"c@d\"}",
                      MYNA_API_ERROR_DUPLICATE);
  assert_message_bad ("{\"to\": \"a@b\", \"body\": \"x\", \"t\\u006f\": \"c@d\"}",
                      MYNA_API_ERROR_DUPLICATE);
  assert_message_bad ("{\"x\": 1, \"to\": \"a@b\", \"x\": 2, \"body\": \"x\"}",
                      MYNA_API_ERROR_DUPLICATE);
}

static void
test_message_jids (void)
{
  assert_message_bad ("{\"to\": \"\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"@localhost\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b@c\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a b@localhost\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@localhost/\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@b\", \"from\": \"x@\", \"body\": \"x\"}",
                      MYNA_API_ERROR_INVALID);
  assert_message_bad ("{\"to\": \"a@-bad-.example\", \"body\": \"x\"}", MYNA_API_ERROR_INVALID);
}

/* The stanza carries the text exactly through serialisation and parsing. */
static void
test_message_stanza (void)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) host = myna_jid_parse ("localhost", NULL);
  g_autoptr(MynaStanza) stanza = NULL, back = NULL;
  g_autofree char *xml = NULL;
  const char *body = "{\"to\": \"bob@localhost\", \"subject\": \"]]> <s>\","
                     " \"body\": \"<b>&amp;</b> ' \\\" \\n\\t\\r 😀\"}";

  g_assert_true (myna_api_parse_message (body, strlen (body), &msg, &error));
  stanza = myna_api_message_to_stanza (&msg, host, "id-1");
  xml = myna_stanza_to_string (stanza);
  back = myna_stanza_parse (xml, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_stanza_get_name (back), ==, "message");
  g_assert_cmpstr (myna_stanza_get_from (back), ==, "localhost");
  g_assert_cmpstr (myna_stanza_get_to (back), ==, "bob@localhost");
  g_assert_cmpstr (myna_stanza_get_type (back), ==, "chat");
  g_assert_cmpstr (myna_stanza_get_id (back), ==, "id-1");
  g_assert_cmpstr (myna_stanza_get_child_text (back, "body"), ==,
                   "<b>&amp;</b> ' \" \n\t\r 😀");
  g_assert_cmpstr (myna_stanza_get_child_text (back, "subject"), ==, "]]> <s>");

  /* An explicit from wins over the default. */
  g_auto(MynaApiMessage) msg2 = { 0 };
  g_autoptr(MynaStanza) s2 = NULL;
  const char *body2 = "{\"to\": \"bob@localhost\", \"from\": \"admin@localhost\", "
                      "\"type\": \"headline\", \"body\": \"b\"}";

  g_assert_true (myna_api_parse_message (body2, strlen (body2), &msg2, NULL));
  s2 = myna_api_message_to_stanza (&msg2, host, NULL);
  g_assert_cmpstr (myna_stanza_get_from (s2), ==, "admin@localhost");
  g_assert_cmpstr (myna_stanza_get_type (s2), ==, "headline");
  g_assert_null (myna_stanza_get_id (s2));
  g_assert_null (myna_stanza_get_child (s2, "subject", NULL));
}

/* ---- users ----------------------------------------------------------------------- */

static void
assert_user_bad (const char *body, MynaApiError code)
{
  g_autoptr(GError) error = NULL;
  MynaApiUser user;

  memset (&user, 0xa5, sizeof user);
  g_assert_false (myna_api_parse_user (body, strlen (body), &user, &error));
  g_assert_error (error, MYNA_API_ERROR, (int) code);
  g_assert_null (user.user);
  g_assert_null (user.host);
  g_assert_null (user.password);
}

static void
test_user_good (void)
{
  g_auto(MynaApiUser) user = { 0 };
  g_auto(MynaApiUser) hosted = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body = "{\"user\": \"Bob\", \"password\": \"p\\u00e4ss w\\\"rd\", \"admin\": true}";
  const char *body2 = "{\"user\": \"alice\", \"host\": \"LocalHost.\", \"password\": \"x\"}";

  g_assert_true (myna_api_parse_user (body, strlen (body), &user, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (user.user, ==, "bob");
  g_assert_null (user.host);
  g_assert_cmpstr (user.password, ==, "päss w\"rd");
  g_assert_true (myna_api_parse_user (body2, strlen (body2), &hosted, &error));
  g_assert_cmpstr (hosted.host, ==, "localhost");
  g_assert_cmpstr (hosted.user, ==, "alice");
}

static void
test_user_bad (void)
{
  g_autofree char *long_pw = repeat ("p", MYNA_API_MAX_PASSWORD + 1);
  g_autofree char *body = g_strdup_printf ("{\"user\": \"bob\", \"password\": \"%s\"}", long_pw);
  g_autofree char *long_user = repeat ("u", 1024);
  g_autofree char *body2 = g_strdup_printf ("{\"user\": \"%s\", \"password\": \"x\"}", long_user);

  assert_user_bad ("{\"password\": \"x\"}", MYNA_API_ERROR_MISSING);
  assert_user_bad ("{\"user\": \"bob\"}", MYNA_API_ERROR_MISSING);
  assert_user_bad ("{\"user\": 1, \"password\": \"x\"}", MYNA_API_ERROR_TYPE);
  assert_user_bad ("{\"user\": \"bob\", \"password\": [\"x\"]}", MYNA_API_ERROR_TYPE);
  assert_user_bad ("{\"user\": \"bob\", \"host\": 7, \"password\": \"x\"}", MYNA_API_ERROR_TYPE);
  assert_user_bad ("{\"user\": \"\", \"password\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"a b\", \"password\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob@localhost\", \"password\": \"x\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob\", \"host\": \"bad..host\", \"password\": \"x\"}",
                   MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"a\\u0007b\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"a\\u007fb\"}", MYNA_API_ERROR_INVALID);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"a\\u0000b\"}", MYNA_API_ERROR_SYNTAX);
  assert_user_bad (body, MYNA_API_ERROR_TOO_LARGE);
  assert_user_bad (body2, MYNA_API_ERROR_TOO_LARGE);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"x\", \"user\": \"eve\"}",
                   MYNA_API_ERROR_DUPLICATE);
  assert_user_bad ("[\"bob\", \"x\"]", MYNA_API_ERROR_NOT_OBJECT);
  assert_user_bad ("{\"user\": \"bob\", \"password\": \"x\"", MYNA_API_ERROR_SYNTAX);
}

static void
test_text_is_xml (void)
{
  g_assert_true (myna_api_text_is_xml (""));
  g_assert_true (myna_api_text_is_xml ("a\tb\nc\rd é 😀 \xef\xbf\xbd"));
  g_assert_false (myna_api_text_is_xml ("\x01"));
  g_assert_false (myna_api_text_is_xml ("a\x1f"));
  g_assert_false (myna_api_text_is_xml ("\xef\xbf\xbe"));
  g_assert_false (myna_api_text_is_xml ("\xef\xbf\xbf"));
}

/* ---- notifications -------------------------------------------------------------- */

static void
test_notification_good (void)
{
  g_auto(MynaApiNotification) n = { 0 };
  g_autoptr(GError) error = NULL;
  const char *body = "{\"to\": [\"Alice@LocalHost\", \"bob@localhost\", \"alice@localhost\"],"
                     " \"title\": \"T\", \"message\": \"caf\\u00e9\", \"uri\": \"https://x/\","
                     " \"ttl\": 60}";

  g_assert_true (myna_api_parse_notification (body, strlen (body), &n, &error));
  g_assert_no_error (error);
  g_assert_false (n.broadcast);
  g_assert_cmpuint (n.to->len, ==, 2);
  g_assert_cmpstr (myna_jid_to_string (n.to->pdata[0]), ==, "alice@localhost");
  g_assert_cmpstr (myna_jid_to_string (n.to->pdata[1]), ==, "bob@localhost");
  g_assert_cmpstr (n.title, ==, "T");
  g_assert_cmpstr (n.message, ==, "café");
  g_assert_cmpstr (n.uri, ==, "https://x/");
  g_assert_cmpint (n.ttl, ==, 60);
  myna_api_notification_clear (&n);

  body = "{\"to\": \"*\", \"title\": \"T\", \"message\": \"m\", \"uri\": null}";
  g_assert_true (myna_api_parse_notification (body, strlen (body), &n, &error));
  g_assert_true (n.broadcast);
  g_assert_null (n.to);
  g_assert_null (n.uri);
  g_assert_cmpint (n.ttl, ==, 0);
  myna_api_notification_clear (&n);

  body = "{\"to\": \"carol@localhost\", \"title\": \"T\", \"message\": \"m\"}";
  g_assert_true (myna_api_parse_notification (body, strlen (body), &n, &error));
  g_assert_cmpuint (n.to->len, ==, 1);
}

static void
assert_notification_bad (const char *body, MynaApiError code)
{
  g_autoptr(GError) error = NULL;
  MynaApiNotification n;

  memset (&n, 0xa5, sizeof n);
  g_assert_false (myna_api_parse_notification (body, strlen (body), &n, &error));
  g_assert_error (error, MYNA_API_ERROR, (int) code);
  g_assert_cmpstr (error->message, !=, "");
  g_assert_null (n.to);
  g_assert_null (n.title);
  g_assert_null (n.message);
  g_assert_null (n.uri);
  g_assert_false (n.broadcast);
  g_assert_cmpint (n.ttl, ==, 0);
}

static void
test_notification_bad (void)
{
  assert_notification_bad ("{\"title\": \"t\", \"message\": \"m\"}", MYNA_API_ERROR_MISSING);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"message\": \"m\"}", MYNA_API_ERROR_MISSING);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\"}", MYNA_API_ERROR_MISSING);
  assert_notification_bad ("{\"to\": 5, \"title\": \"t\", \"message\": \"m\"}", MYNA_API_ERROR_TYPE);
  assert_notification_bad ("{\"to\": [5], \"title\": \"t\", \"message\": \"m\"}", MYNA_API_ERROR_TYPE);
  assert_notification_bad ("{\"to\": [], \"title\": \"t\", \"message\": \"m\"}", MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"localhost\", \"title\": \"t\", \"message\": \"m\"}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@localhost/r\", \"title\": \"t\", \"message\": \"m\"}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@@b\", \"title\": \"t\", \"message\": \"m\"}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"\", \"message\": \"m\"}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\", \"message\": \"m\", \"ttl\": 1.5}",
                           MYNA_API_ERROR_TYPE);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\", \"message\": \"m\", \"ttl\": \"60\"}",
                           MYNA_API_ERROR_TYPE);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\", \"message\": \"m\", \"ttl\": 0}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\", \"message\": \"\\u0001\"}",
                           MYNA_API_ERROR_INVALID);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"to\": \"*\", \"title\": \"t\", \"message\": \"m\"}",
                           MYNA_API_ERROR_DUPLICATE);
  assert_notification_bad ("{\"to\": \"a@localhost\", \"title\": \"t\", \"message\": \"m\",}",
                           MYNA_API_ERROR_SYNTAX);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/api-body/message/minimal", test_message_minimal);
  g_test_add_func ("/api-body/message/full", test_message_full);
  g_test_add_func ("/api-body/message/escapes", test_message_escapes);
  g_test_add_func ("/api-body/message/unknown-and-null", test_message_unknown_and_null);
  g_test_add_func ("/api-body/message/not-json", test_message_not_json);
  g_test_add_func ("/api-body/message/not-object", test_message_not_object);
  g_test_add_func ("/api-body/message/strings", test_message_strings);
  g_test_add_func ("/api-body/message/utf8", test_message_utf8);
  g_test_add_func ("/api-body/message/depth", test_message_depth);
  g_test_add_func ("/api-body/message/sizes", test_message_sizes);
  g_test_add_func ("/api-body/message/members", test_message_members);
  g_test_add_func ("/api-body/message/jids", test_message_jids);
  g_test_add_func ("/api-body/message/stanza", test_message_stanza);
  g_test_add_func ("/api-body/user/good", test_user_good);
  g_test_add_func ("/api-body/user/bad", test_user_bad);
  g_test_add_func ("/api-body/notification/good", test_notification_good);
  g_test_add_func ("/api-body/notification/bad", test_notification_bad);
  g_test_add_func ("/api-body/text-is-xml", test_text_is_xml);
  return g_test_run ();
}
