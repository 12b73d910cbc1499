/* test-jid.c: unit tests for MynaJid (core/jid.c): the RFC 7622 §3.5
 * examples, the PRECIS profiles of the localpart and resourcepart, IDN and
 * IP-literal domainparts, length limits, invalid UTF-8, comparison and the
 * derived-JID helpers. */
#include "myna/jid.h"

#include <string.h>

/* Parses @input and checks its normalised form. */
static void
assert_jid (const char *input, const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse (input, &error);

  g_assert_no_error (error);
  g_assert_nonnull (jid);
  g_assert_cmpstr (myna_jid_to_string (jid), ==, expected);
}

/* Parses @input and checks that it fails with @code. */
static void
assert_bad (const char *input, MynaJidError code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse (input, &error);

  g_assert_null (jid);
  g_assert_error (error, MYNA_JID_ERROR, (int) code);
  g_assert_nonnull (error->message);
}

static void
assert_same (const char *a, const char *b)
{
  g_autoptr(MynaJid) ja = myna_jid_parse (a, NULL);
  g_autoptr(MynaJid) jb = myna_jid_parse (b, NULL);

  g_assert_nonnull (ja);
  g_assert_nonnull (jb);
  g_assert_true (myna_jid_equal (ja, jb));
  g_assert_cmpuint (myna_jid_hash (ja), ==, myna_jid_hash (jb));
}

static char *
repeat (const char *unit, guint n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append (s, unit);
  return g_string_free (s, FALSE);
}

static void
test_rfc7622_good (void)
{
  assert_jid ("juliet@example.com", "juliet@example.com");
  assert_jid ("juliet@example.com/foo", "juliet@example.com/foo");
  assert_jid ("juliet@example.com/foo bar", "juliet@example.com/foo bar");
  assert_jid ("juliet@example.com/foo@bar", "juliet@example.com/foo@bar");
  assert_jid ("foo\\20bar@example.com", "foo\\20bar@example.com");
  assert_jid ("fussball@example.com", "fussball@example.com");
  assert_jid ("fußball@example.com", "fußball@example.com");
  assert_jid ("π@example.com", "π@example.com");
  assert_jid ("Σ@example.com/foo", "σ@example.com/foo");
  assert_jid ("σ@example.com/foo", "σ@example.com/foo");
  assert_jid ("ς@example.com/foo", "ς@example.com/foo");
  assert_jid ("king@example.com/♚", "king@example.com/♚");
  assert_jid ("example.com", "example.com");
  assert_jid ("example.com/foobar", "example.com/foobar");
  assert_jid ("a.example.com/b@example.net", "a.example.com/b@example.net");
  assert_jid ("κάππα@example.com/ΚΆΠΠΑ", "κάππα@example.com/ΚΆΠΠΑ");
  assert_jid ("ΚΆΠΠΑ@example.com/ΚΆΠΠΑ", "κάππα@example.com/ΚΆΠΠΑ");

  /* fussball and fußball are different users (no case folding of ß). */
  g_autoptr(MynaJid) a = myna_jid_parse ("fussball@example.com", NULL);
  g_autoptr(MynaJid) b = myna_jid_parse ("fußball@example.com", NULL);
  g_assert_false (myna_jid_equal (a, b));
}

static void
test_rfc7622_bad (void)
{
  assert_bad ("\"juliet\"@example.com", MYNA_JID_ERROR_BAD_LOCAL);
  assert_bad ("foo bar@example.com", MYNA_JID_ERROR_BAD_LOCAL);
  assert_bad ("juliet@example.com/", MYNA_JID_ERROR_EMPTY);
  assert_bad ("@example.com/", MYNA_JID_ERROR_EMPTY);
  assert_bad ("henryⅣ@example.com", MYNA_JID_ERROR_BAD_LOCAL);
  assert_bad ("♚@example.com", MYNA_JID_ERROR_BAD_LOCAL);
  assert_bad ("juliet@", MYNA_JID_ERROR_EMPTY);
  assert_bad ("/foobar", MYNA_JID_ERROR_EMPTY);
}

static void
test_split (void)
{
  g_autoptr(MynaJid) jid = myna_jid_parse ("a@b@c/d@e/f", NULL);

  /* The first '/' ends the domain; '@' after the first one is refused. */
  g_assert_null (jid);
  assert_jid ("example.com/a@b/c", "example.com/a@b/c");
  assert_bad ("", MYNA_JID_ERROR_EMPTY);
  assert_bad ("@", MYNA_JID_ERROR_EMPTY);
  assert_bad ("/", MYNA_JID_ERROR_EMPTY);
  assert_bad ("@example.com", MYNA_JID_ERROR_EMPTY);
  assert_bad ("user@", MYNA_JID_ERROR_EMPTY);
  assert_bad ("user@/res", MYNA_JID_ERROR_EMPTY);
  assert_bad ("example.com/", MYNA_JID_ERROR_EMPTY);
  assert_bad ("a@b@example.com", MYNA_JID_ERROR_BAD_DOMAIN);

  g_autoptr(MynaJid) full = myna_jid_parse ("Juliet@Example.COM/Balcony",
                                            NULL);
  g_assert_cmpstr (myna_jid_get_local (full), ==, "juliet");
  g_assert_cmpstr (myna_jid_get_domain (full), ==, "example.com");
  g_assert_cmpstr (myna_jid_get_resource (full), ==, "Balcony");
  g_assert_cmpstr (myna_jid_bare_string (full), ==, "juliet@example.com");
  g_assert_false (myna_jid_is_bare (full));

  g_autoptr(MynaJid) domain = myna_jid_parse ("example.com", NULL);
  g_assert_null (myna_jid_get_local (domain));
  g_assert_null (myna_jid_get_resource (domain));
  g_assert_cmpstr (myna_jid_get_domain (domain), ==, "example.com");
  g_assert_true (myna_jid_is_bare (domain));
  g_assert_true (myna_jid_bare_string (domain) == myna_jid_to_string (domain));
}

static void
test_case_folding (void)
{
  assert_jid ("JULIET@EXAMPLE.COM/Balcony", "juliet@example.com/Balcony");
  assert_jid ("Juliet@Example.Com", "juliet@example.com");
  assert_jid ("ÉLODIE@ÉXAMPLE.FR/Ô", "élodie@éxample.fr/Ô");
  assert_same ("ROMEO@example.com", "romeo@EXAMPLE.com");
  /* Simple, locale-independent mapping, code point by code point: capital
   * sigma is always small sigma, dotted capital I is plain i. */
  assert_jid ("ΣΑΣ@example.com", "σασ@example.com");
  assert_jid ("\xc4\xb0stanbul@example.com", "istanbul@example.com");

  /* Case is kept in the resourcepart. */
  g_autoptr(MynaJid) a = myna_jid_parse ("romeo@example.com/Home", NULL);
  g_autoptr(MynaJid) b = myna_jid_parse ("romeo@example.com/home", NULL);
  g_assert_false (myna_jid_equal (a, b));
  g_assert_true (myna_jid_bare_equal (a, b));
}

static void
test_localpart_profile (void)
{
  /* Width mapping, then lower case, then NFC. */
  assert_jid ("ＪＵＬＩＥＴ@example.com", "juliet@example.com");
  assert_jid ("ｶﾞ@example.com", "ガ@example.com");
  assert_jid ("e\xcc\x81@example.com", "é@example.com");
  /* Allowed ASCII: anything printable but " & ' / : < > @ and space. */
  assert_jid ("a,b!#$%*+=?^_`{|}~-.@example.com",
              "a,b!#$%*+=?^_`{|}~-.@example.com");
  assert_jid ("col·lega@example.com", "col·lega@example.com");
  assert_jid ("123@example.com", "123@example.com");

  const char *bad[] = {
    "a&b@example.com", "a'b@example.com", "a:b@example.com",
    "a<b@example.com", "a>b@example.com", "ＪＵＬ＠@example.com",
    "a\tb@example.com", "a\x7f@example.com",
    "a\xc2\xa0" "b@example.com",            /* NO-BREAK SPACE */
    "a\xe3\x80\x80" "b@example.com",        /* IDEOGRAPHIC SPACE */
    "a\xe2\x80\x8b" "b@example.com",        /* ZERO WIDTH SPACE (Cf) */
    "a\xe2\x80\x8d" "b@example.com",        /* ZWJ, not after a virama */
    "a\xef\xb8\x8f" "b@example.com",        /* VARIATION SELECTOR-16 */
    "a\xee\x80\x80" "b@example.com",        /* private use */
    "a\xcd\xb8" "b@example.com",            /* U+0378, unassigned */
    "\xef\xac\x81@example.com",             /* U+FB01 ligature fi */
    "x\xc2\xb2@example.com",                /* superscript two */
    "a·b@example.com",                      /* middle dot out of context */
    "a€@example.com", "a—b@example.com", "☺@example.com",
    "\xc7\x85@example.com",                 /* U+01C5, titlecase */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_bad (bad[i], MYNA_JID_ERROR_BAD_LOCAL);

  /* ZWNJ after a virama (Devanagari) is allowed. */
  assert_jid ("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7@example.com",
              "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7@example.com");

  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse ("foo bar@example.com", &error);
  g_assert_null (jid);
  g_assert_nonnull (strstr (error->message, "localpart"));
  g_assert_nonnull (strstr (error->message, "U+0020"));
}

static void
test_resourcepart_profile (void)
{
  assert_jid ("a@example.com/x\xe2\x80\x83y", "a@example.com/x y");  /* EM SPACE */
  assert_jid ("a@example.com/\xc2\xa0", "a@example.com/ ");
  assert_jid ("a@example.com/e\xcc\x81", "a@example.com/é");
  assert_jid ("a@example.com/ＦＵＬＬ", "a@example.com/ＦＵＬＬ");
  assert_jid ("a@example.com/Ⅳ ♚ €!", "a@example.com/Ⅳ ♚ €!");
  assert_jid ("a@example.com/ / @ :", "a@example.com/ / @ :");

  assert_bad ("a@example.com/a\x01", MYNA_JID_ERROR_BAD_RESOURCE);
  assert_bad ("a@example.com/a\x7f", MYNA_JID_ERROR_BAD_RESOURCE);
  assert_bad ("a@example.com/a\xc2\x85", MYNA_JID_ERROR_BAD_RESOURCE);
  assert_bad ("a@example.com/a\xe2\x80\xa8", MYNA_JID_ERROR_BAD_RESOURCE);
  assert_bad ("a@example.com/a\xef\xbb\xbf", MYNA_JID_ERROR_BAD_RESOURCE);
  assert_bad ("a@example.com/\xf3\xa0\x84\x80", MYNA_JID_ERROR_BAD_RESOURCE);

  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse ("a@example.com/\x01", &error);
  g_assert_null (jid);
  g_assert_nonnull (strstr (error->message, "resourcepart"));
}

static void
test_domain (void)
{
  assert_jid ("example.com.", "example.com");
  assert_jid ("juliet@example.com./r", "juliet@example.com/r");
  assert_jid ("localhost", "localhost");
  assert_jid ("_xmpp-client.example.com", "_xmpp-client.example.com");
  assert_jid ("a-b.c0.example", "a-b.c0.example");
  assert_jid ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com");
  assert_jid ("example\xe3\x80\x82" "com", "example.com");  /* U+3002 */
  assert_jid ("example.com\xe3\x80\x82", "example.com");

  assert_bad (".", MYNA_JID_ERROR_EMPTY);
  assert_bad ("user@./r", MYNA_JID_ERROR_EMPTY);
  assert_bad ("example.com..", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("a..b", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad (".a", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("-a.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("a-.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("ab--cd.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("exa mple.com", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("exa:mple.com", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("♚.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("henryⅣ.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("example.com\xc2\xa0", MYNA_JID_ERROR_BAD_DOMAIN);

  g_autofree char *label63 = repeat ("a", 63);
  g_autofree char *label64 = repeat ("a", 64);
  g_autofree char *ok = g_strconcat (label63, ".example", NULL);
  g_autofree char *bad = g_strconcat (label64, ".example", NULL);
  assert_jid (ok, ok);
  assert_bad (bad, MYNA_JID_ERROR_BAD_DOMAIN);

  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse ("a..b", &error);
  g_assert_null (jid);
  g_assert_nonnull (strstr (error->message, "domainpart"));
}

static void
test_idn (void)
{
  assert_jid ("ëxample.com", "ëxample.com");
  assert_jid ("xn--xample-ova.com", "ëxample.com");
  assert_jid ("XN--XAMPLE-OVA.COM", "ëxample.com");
  assert_jid ("ËXAMPLE.com", "ëxample.com");
  assert_jid ("e\xcc\x88xample.com", "ëxample.com");
  assert_jid ("juliet@münchen.example/Ü", "juliet@münchen.example/Ü");
  assert_jid ("straße.example", "straße.example");
  assert_jid ("xn--mnchen-3ya.xn--xample-ova.com", "münchen.ëxample.com");

  assert_same ("juliet@ëxample.com", "juliet@xn--xample-ova.com");
  assert_same ("juliet@ËXAMPLE.com/r", "juliet@XN--xample-OVA.com/r");

  assert_bad ("xn--abc.com", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("xn--.com", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("xn--example.com", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("xn--ls8h.example", MYNA_JID_ERROR_BAD_DOMAIN);   /* emoji */
  assert_bad ("ë_x.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("-ë.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("ë-.example", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("ëb--c.example", MYNA_JID_ERROR_BAD_DOMAIN);
  /* Found by fuzzing: an A-label of a U-label ending in '-'. */
  assert_bad ("J@XN--onXN--ony", MYNA_JID_ERROR_BAD_DOMAIN);
  /* Upper-case Cherokee is valid IDNA2008 but not stable under lower-case
   * mapping, so its A-label is refused rather than changing on re-parse. */
  assert_bad ("xn--ice.example", MYNA_JID_ERROR_BAD_DOMAIN);

  g_autofree char *domain = myna_jid_prep_domain ("XN--XAMPLE-OVA.com.",
                                                  NULL);
  g_assert_cmpstr (domain, ==, "ëxample.com");
}

static void
test_ip_literals (void)
{
  assert_jid ("juliet@192.0.2.1/r", "juliet@192.0.2.1/r");
  assert_jid ("127.0.0.1", "127.0.0.1");
  assert_jid ("[::1]", "[::1]");
  assert_jid ("juliet@[::1]/r", "juliet@[::1]/r");
  assert_jid ("[2001:DB8::1]", "[2001:db8::1]");
  assert_jid ("[2001:0db8:0000:0000::0001]", "[2001:db8::1]");
  assert_jid ("[::FFFF:192.0.2.1]", "[::ffff:192.0.2.1]");
  assert_same ("[::1]", "[0:0:0:0:0:0:0:1]");

  assert_bad ("1.2.3.256", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("01.2.3.4", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("1.2.3", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("[::1", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("[]", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("[1.2.3.4]", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("[fe80::1%eth0]", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("[::1]x", MYNA_JID_ERROR_BAD_DOMAIN);
  assert_bad ("::1", MYNA_JID_ERROR_BAD_DOMAIN);
}

static void
test_length_limits (void)
{
  g_autofree char *a1023 = repeat ("a", 1023);
  g_autofree char *a1024 = repeat ("a", 1024);

  g_autofree char *local_ok = g_strconcat (a1023, "@example.com", NULL);
  g_autofree char *local_bad = g_strconcat (a1024, "@example.com", NULL);
  assert_jid (local_ok, local_ok);
  assert_bad (local_bad, MYNA_JID_ERROR_TOO_LONG);

  g_autofree char *res_ok = g_strconcat ("example.com/", a1023, NULL);
  g_autofree char *res_bad = g_strconcat ("example.com/", a1024, NULL);
  assert_jid (res_ok, res_ok);
  assert_bad (res_bad, MYNA_JID_ERROR_TOO_LONG);

  /* 15 labels of 63 and their dots, then 63: 1023 bytes. */
  g_autofree char *labels = repeat ("abcdefghijklmnopqrstuvwxyzabcdefghijklmnop"
                                    "qrstuvwxyzabcdefghijk.", 15);
  g_autofree char *label62 = repeat ("b", 62);
  g_autofree char *dom_ok = g_strconcat (labels, label62, "c", NULL);
  g_autofree char *dom_bad = g_strconcat (labels, label62, ".c", NULL);
  g_assert_cmpuint (strlen (dom_ok), ==, 1023);
  g_assert_cmpuint (strlen (dom_bad), ==, 1024);
  assert_jid (dom_ok, dom_ok);
  assert_bad (dom_bad, MYNA_JID_ERROR_TOO_LONG);

  /* The limit applies after normalisation: fullwidth letters are 3 bytes
   * each but map to ASCII. */
  g_autofree char *wide1023 = repeat ("Ａ", 1023);
  g_autofree char *wide1024 = repeat ("Ａ", 1024);
  g_autofree char *wide_ok = g_strconcat (wide1023, "@example.com", NULL);
  g_autofree char *wide_bad = g_strconcat (wide1024, "@example.com", NULL);
  g_autofree char *wide_expect = g_strconcat (a1023, "@example.com", NULL);
  assert_jid (wide_ok, wide_expect);
  assert_bad (wide_bad, MYNA_JID_ERROR_TOO_LONG);

  /* Multi-byte characters count in bytes: 512 × 2 bytes is too long. */
  g_autofree char *e511 = repeat ("é", 511);
  g_autofree char *e512 = repeat ("é", 512);
  g_autofree char *e_ok = g_strconcat (e511, "@example.com", NULL);
  g_autofree char *e_bad = g_strconcat (e512, "@example.com", NULL);
  assert_jid (e_ok, e_ok);
  assert_bad (e_bad, MYNA_JID_ERROR_TOO_LONG);

  /* Very long input is refused without normalising it. */
  g_autofree char *huge = repeat ("Ａ", 100000);
  assert_bad (huge, MYNA_JID_ERROR_TOO_LONG);
}

static void
test_invalid_utf8 (void)
{
  const char *bad[] = {
    "\xff@example.com",
    "juliet@exa\xc3mple.com",
    "juliet@example.com/\xed\xa0\x80",     /* a surrogate */
    "\xc0\xaf@example.com",                 /* overlong '/' */
    "juliet@example.com/\xf4\x90\x80\x80",  /* above U+10FFFF */
    "@\xff",                                /* before the empty localpart */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_bad (bad[i], MYNA_JID_ERROR_BAD_UTF8);

  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_new ("\xff", "example.com", NULL, &error);
  g_assert_null (jid);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_UTF8);
  g_clear_error (&error);

  g_autofree char *res = myna_jid_prep_resource ("a\x80", &error);
  g_assert_null (res);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_UTF8);
}

static void
test_equal_hash (void)
{
  g_autoptr(GHashTable) table = g_hash_table_new_full (myna_jid_hash,
                                                       myna_jid_equal,
                                                       (GDestroyNotify) myna_jid_unref,
                                                       NULL);
  const char *same[] = {
    "juliet@example.com/balcony", "JULIET@example.com/balcony",
    "juliet@EXAMPLE.COM./balcony", "ｊｕｌｉｅｔ@example.com/balcony",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (same); i++)
    g_hash_table_add (table, myna_jid_parse (same[i], NULL));
  g_assert_cmpuint (g_hash_table_size (table), ==, 1);
  g_hash_table_add (table, myna_jid_parse ("juliet@example.com/Balcony", NULL));
  g_hash_table_add (table, myna_jid_parse ("juliet@example.com", NULL));
  g_hash_table_add (table, myna_jid_parse ("example.com/juliet", NULL));
  g_assert_cmpuint (g_hash_table_size (table), ==, 4);

  g_autoptr(MynaJid) probe = myna_jid_parse ("Juliet@Example.com/balcony", NULL);
  g_assert_true (g_hash_table_contains (table, probe));

  g_autoptr(MynaJid) a = myna_jid_parse ("juliet@example.com/a", NULL);
  g_autoptr(MynaJid) b = myna_jid_parse ("juliet@example.com/b", NULL);
  g_autoptr(MynaJid) c = myna_jid_parse ("romeo@example.com/a", NULL);
  g_assert_false (myna_jid_equal (a, b));
  g_assert_true (myna_jid_bare_equal (a, b));
  g_assert_false (myna_jid_bare_equal (a, c));
  g_assert_true (myna_jid_equal (a, a));
}

static void
test_ref (void)
{
  MynaJid *jid = myna_jid_parse ("juliet@example.com", NULL);

  g_assert_true (myna_jid_ref (jid) == jid);
  myna_jid_unref (jid);
  g_assert_cmpstr (myna_jid_to_string (jid), ==, "juliet@example.com");
  myna_jid_unref (jid);
}

static void
test_get_bare (void)
{
  g_autoptr(MynaJid) bare = myna_jid_parse ("juliet@example.com", NULL);
  g_autoptr(MynaJid) same = myna_jid_get_bare (bare);
  g_assert_true (same == bare);

  g_autoptr(MynaJid) full = myna_jid_parse ("juliet@example.com/balcony", NULL);
  g_autoptr(MynaJid) stripped = myna_jid_get_bare (full);
  g_assert_true (stripped != full);
  g_assert_true (myna_jid_equal (stripped, bare));
  g_assert_true (myna_jid_is_bare (stripped));
  g_assert_cmpstr (myna_jid_get_local (stripped), ==, "juliet");
  g_assert_cmpstr (myna_jid_get_domain (stripped), ==, "example.com");

  g_autoptr(MynaJid) dfull = myna_jid_parse ("example.com/x", NULL);
  g_autoptr(MynaJid) dbare = myna_jid_get_bare (dfull);
  g_assert_cmpstr (myna_jid_to_string (dbare), ==, "example.com");
  g_assert_null (myna_jid_get_local (dbare));
}

static void
test_with_resource (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) bare = myna_jid_parse ("juliet@example.com", NULL);

  g_autoptr(MynaJid) phone = myna_jid_with_resource (bare, "Phone\xc2\xa0" "1",
                                                     &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (phone), ==, "juliet@example.com/Phone 1");
  g_assert_cmpstr (myna_jid_get_resource (phone), ==, "Phone 1");
  g_assert_cmpstr (myna_jid_bare_string (phone), ==, "juliet@example.com");

  g_autoptr(MynaJid) other = myna_jid_with_resource (phone, "laptop", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (other), ==, "juliet@example.com/laptop");

  g_autoptr(MynaJid) none = myna_jid_with_resource (phone, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (myna_jid_equal (none, bare));

  g_autoptr(MynaJid) empty = myna_jid_with_resource (bare, "", &error);
  g_assert_null (empty);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_EMPTY);
  g_clear_error (&error);

  g_autoptr(MynaJid) ctrl = myna_jid_with_resource (bare, "a\nb", &error);
  g_assert_null (ctrl);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_RESOURCE);
}

static void
test_new (void)
{
  g_autoptr(GError) error = NULL;

  g_autoptr(MynaJid) a = myna_jid_new ("Juliet", "Example.COM.", "Balcony",
                                       &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (a), ==, "juliet@example.com/Balcony");

  g_autoptr(MynaJid) b = myna_jid_new (NULL, "example.com", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (b), ==, "example.com");

  g_autoptr(MynaJid) c = myna_jid_new (NULL, "example.com", "a/b@c", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_jid_to_string (c), ==, "example.com/a/b@c");

  struct { const char *l, *d, *r; MynaJidError code; } bad[] = {
    { "a@b", "example.com", NULL, MYNA_JID_ERROR_BAD_LOCAL },
    { "a/b", "example.com", NULL, MYNA_JID_ERROR_BAD_LOCAL },
    { "", "example.com", NULL, MYNA_JID_ERROR_EMPTY },
    { NULL, "", NULL, MYNA_JID_ERROR_EMPTY },
    { NULL, "example.com", "", MYNA_JID_ERROR_EMPTY },
    { NULL, "a/b", NULL, MYNA_JID_ERROR_BAD_DOMAIN },
    { NULL, "a@b", NULL, MYNA_JID_ERROR_BAD_DOMAIN },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(MynaJid) jid = myna_jid_new (bad[i].l, bad[i].d, bad[i].r,
                                             &error);
      g_assert_null (jid);
      g_assert_error (error, MYNA_JID_ERROR, (int) bad[i].code);
      g_clear_error (&error);
    }
}

static void
test_prep (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *local = myna_jid_prep_local ("JuLiet", &error);
  g_autofree char *plain = myna_jid_prep_local ("romeo", &error);
  g_autofree char *domain = myna_jid_prep_domain ("EXAMPLE.com.", &error);
  g_autofree char *v6 = myna_jid_prep_domain ("[::0001]", &error);
  g_autofree char *res = myna_jid_prep_resource ("Foo\xe2\x80\x80" "Bar",
                                                 &error);

  g_assert_no_error (error);
  g_assert_cmpstr (local, ==, "juliet");
  g_assert_cmpstr (plain, ==, "romeo");
  g_assert_cmpstr (domain, ==, "example.com");
  g_assert_cmpstr (v6, ==, "[::1]");
  g_assert_cmpstr (res, ==, "Foo Bar");

  g_autofree char *l2 = myna_jid_prep_local ("", &error);
  g_assert_null (l2);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_EMPTY);
  g_clear_error (&error);

  g_autofree char *l3 = myna_jid_prep_local ("a b", &error);
  g_assert_null (l3);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_LOCAL);
  g_clear_error (&error);

  g_autofree char *d2 = myna_jid_prep_domain ("a..b", &error);
  g_assert_null (d2);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_DOMAIN);
  g_clear_error (&error);

  g_autofree char *r2 = myna_jid_prep_resource ("a\tb", &error);
  g_assert_null (r2);
  g_assert_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_RESOURCE);
}

static void
test_misuse (void)
{
  if (g_test_subprocess ())
    {
      g_assert_null (myna_jid_parse (NULL, NULL));
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*str != NULL*");
}

/* Run with -m perf: time of parsing a typical full JID. */
static void
test_perf (void)
{
  const guint n = 1000000;
  gdouble elapsed;

  if (!g_test_perf ())
    {
      g_test_skip ("run with -m perf");
      return;
    }
  g_test_timer_start ();
  for (guint i = 0; i < n; i++)
    {
      MynaJid *jid = myna_jid_parse ("user@example.com/res", NULL);

      myna_jid_unref (jid);
    }
  elapsed = g_test_timer_elapsed ();
  g_test_minimized_result (elapsed * 1e9 / n, "ns per ASCII parse: %.0f",
                           elapsed * 1e9 / n);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jid/rfc7622/good", test_rfc7622_good);
  g_test_add_func ("/jid/rfc7622/bad", test_rfc7622_bad);
  g_test_add_func ("/jid/split", test_split);
  g_test_add_func ("/jid/case-folding", test_case_folding);
  g_test_add_func ("/jid/localpart", test_localpart_profile);
  g_test_add_func ("/jid/resourcepart", test_resourcepart_profile);
  g_test_add_func ("/jid/domain", test_domain);
  g_test_add_func ("/jid/idn", test_idn);
  g_test_add_func ("/jid/ip-literals", test_ip_literals);
  g_test_add_func ("/jid/length-limits", test_length_limits);
  g_test_add_func ("/jid/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/jid/equal-hash", test_equal_hash);
  g_test_add_func ("/jid/ref", test_ref);
  g_test_add_func ("/jid/get-bare", test_get_bare);
  g_test_add_func ("/jid/with-resource", test_with_resource);
  g_test_add_func ("/jid/new", test_new);
  g_test_add_func ("/jid/prep", test_prep);
  g_test_add_func ("/jid/misuse", test_misuse);
  g_test_add_func ("/jid/perf", test_perf);

  return g_test_run ();
}
