/* verify.c: XEP-0115 §5 verification strings and hashes (see verify.h). */
#include "verify.h"

#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

/* One identity's four sort keys. */
typedef struct {
  const char *category;
  const char *type;
  const char *lang;
  const char *name;
} VerifyIdentity;

/* One extended form: its FORM_TYPE and the form element. */
typedef struct {
  const char       *form_type;
  const MynaStanza *form;
} VerifyForm;

static const char *
verify_nonnull (const char *s)
{
  return s != NULL ? s : "";
}

/* Octet order of strings (XEP-0115 §5.1: "i;octet" collation). */
static int
verify_strcmp (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static int
verify_identity_cmp (gconstpointer a, gconstpointer b)
{
  const VerifyIdentity *x = a, *y = b;
  int c;

  if ((c = strcmp (x->category, y->category)) != 0
      || (c = strcmp (x->type, y->type)) != 0
      || (c = strcmp (x->lang, y->lang)) != 0)
    return c;
  return strcmp (x->name, y->name);
}

static int
verify_form_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp (((const VerifyForm *) a)->form_type, ((const VerifyForm *) b)->form_type);
}

/* The <value/> texts of @field, in document order. */
static GPtrArray *
verify_field_values (const MynaStanza *field)
{
  GPtrArray *values = g_ptr_array_new ();

  for (guint i = 0; i < myna_stanza_get_n_children (field); i++)
    {
      MynaStanza *v = myna_stanza_get_child_nth (field, i);
      if (!myna_stanza_is_text (v) && g_strcmp0 (myna_stanza_get_name (v), "value") == 0)
        g_ptr_array_add (values, (gpointer) myna_stanza_get_text (v));
    }
  return values;
}

/* The FORM_TYPE of @form: NULL (ignore the form) when it has none or it
 * is not hidden; sets @bad when it has several values. */
static const char *
verify_form_type (const MynaStanza *form, gboolean *bad)
{
  for (guint i = 0; i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *f = myna_stanza_get_child_nth (form, i);
      g_autoptr(GPtrArray) values = NULL;

      if (myna_stanza_is_text (f) || g_strcmp0 (myna_stanza_get_name (f), "field") != 0
          || g_strcmp0 (myna_stanza_get_attr (f, "var"), "FORM_TYPE") != 0)
        continue;
      if (g_strcmp0 (myna_stanza_get_attr (f, "type"), "hidden") != 0)
        return NULL;
      values = verify_field_values (f);
      if (values->len != 1)
        {
          *bad = values->len > 1;
          return NULL;
        }
      return g_ptr_array_index (values, 0);
    }
  return NULL;
}

/* Appends @form's fields but FORM_TYPE, sorted by var, values sorted. */
static void
verify_append_form (GString *s, const VerifyForm *vf)
{
  g_autoptr(GPtrArray) fields = g_ptr_array_new ();

  g_string_append (s, vf->form_type);
  g_string_append_c (s, '<');
  for (guint i = 0; i < myna_stanza_get_n_children (vf->form); i++)
    {
      MynaStanza *f = myna_stanza_get_child_nth (vf->form, i);
      if (!myna_stanza_is_text (f) && g_strcmp0 (myna_stanza_get_name (f), "field") == 0
          && g_strcmp0 (myna_stanza_get_attr (f, "var"), "FORM_TYPE") != 0)
        g_ptr_array_add (fields, f);
    }
  /* Sort by var: an array of (var, field) pairs would do; fields are few. */
  for (guint i = 1; i < fields->len; i++)
    for (guint j = i; j > 0; j--)
      {
        MynaStanza *a = g_ptr_array_index (fields, j - 1), *b = g_ptr_array_index (fields, j);
        if (strcmp (verify_nonnull (myna_stanza_get_attr (a, "var")),
                    verify_nonnull (myna_stanza_get_attr (b, "var"))) <= 0)
          break;
        fields->pdata[j - 1] = b;
        fields->pdata[j] = a;
      }
  for (guint i = 0; i < fields->len; i++)
    {
      MynaStanza *f = g_ptr_array_index (fields, i);
      g_autoptr(GPtrArray) values = verify_field_values (f);

      g_string_append (s, verify_nonnull (myna_stanza_get_attr (f, "var")));
      g_string_append_c (s, '<');
      g_ptr_array_sort (values, verify_strcmp);
      for (guint k = 0; k < values->len; k++)
        {
          g_string_append (s, g_ptr_array_index (values, k));
          g_string_append_c (s, '<');
        }
    }
}

char *
caps_verification_string (const MynaStanza *query, const char **why)
{
  g_autoptr(GArray) identities = g_array_new (FALSE, FALSE, sizeof (VerifyIdentity));
  g_autoptr(GPtrArray) features = g_ptr_array_new ();
  g_autoptr(GArray) forms = g_array_new (FALSE, FALSE, sizeof (VerifyForm));
  g_autoptr(GString) s = g_string_new (NULL);
  const char *unused;

  g_return_val_if_fail (query != NULL, NULL);
  if (why == NULL)
    why = &unused;
  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (query, i);
      const char *name = myna_stanza_is_text (c) ? NULL : myna_stanza_get_name (c);

      if (g_strcmp0 (name, "identity") == 0
          && g_strcmp0 (myna_stanza_get_ns (c), CAPS_NS_DISCO_INFO) == 0)
        {
          VerifyIdentity id = {
            .category = verify_nonnull (myna_stanza_get_attr (c, "category")),
            .type = verify_nonnull (myna_stanza_get_attr (c, "type")),
            .lang = verify_nonnull (myna_stanza_get_attr_ns (c, MYNA_NS_XML, "lang")),
            .name = verify_nonnull (myna_stanza_get_attr (c, "name")),
          };
          g_array_append_val (identities, id);
        }
      else if (g_strcmp0 (name, "feature") == 0
               && g_strcmp0 (myna_stanza_get_ns (c), CAPS_NS_DISCO_INFO) == 0)
        g_ptr_array_add (features, (gpointer) verify_nonnull (myna_stanza_get_attr (c, "var")));
      else if (g_strcmp0 (name, "x") == 0 && g_strcmp0 (myna_stanza_get_ns (c), CAPS_NS_DATA) == 0)
        {
          gboolean bad = FALSE;
          VerifyForm vf = { .form_type = verify_form_type (c, &bad), .form = c };

          if (bad)
            {
              *why = "a FORM_TYPE with several values";
              return NULL;
            }
          if (vf.form_type != NULL)
            g_array_append_val (forms, vf);
        }
    }

  g_array_sort (identities, verify_identity_cmp);
  for (guint i = 0; i < identities->len; i++)
    {
      const VerifyIdentity *id = &g_array_index (identities, VerifyIdentity, i);
      if (i > 0 && verify_identity_cmp (id - 1, id) == 0)
        {
          *why = "a duplicate identity";
          return NULL;
        }
      g_string_append_printf (s, "%s/%s/%s/%s<", id->category, id->type, id->lang, id->name);
    }
  g_ptr_array_sort (features, verify_strcmp);
  for (guint i = 0; i < features->len; i++)
    {
      const char *f = g_ptr_array_index (features, i);
      if (i > 0 && strcmp (g_ptr_array_index (features, i - 1), f) == 0)
        {
          *why = "a duplicate feature";
          return NULL;
        }
      g_string_append (s, f);
      g_string_append_c (s, '<');
    }
  g_array_sort (forms, verify_form_cmp);
  for (guint i = 0; i < forms->len; i++)
    {
      const VerifyForm *vf = &g_array_index (forms, VerifyForm, i);
      if (i > 0 && verify_form_cmp (vf - 1, vf) == 0)
        {
          *why = "two forms of one FORM_TYPE";
          return NULL;
        }
      verify_append_form (s, vf);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* The GnuTLS digest of an IANA hash name, or GNUTLS_DIG_UNKNOWN. */
static gnutls_digest_algorithm_t
verify_digest (const char *hash)
{
  static const struct {
    const char *name;
    gnutls_digest_algorithm_t dig;
  } digests[] = {
    { "sha-1",    GNUTLS_DIG_SHA1 },
    { "sha-224",  GNUTLS_DIG_SHA224 },
    { "sha-256",  GNUTLS_DIG_SHA256 },
    { "sha-384",  GNUTLS_DIG_SHA384 },
    { "sha-512",  GNUTLS_DIG_SHA512 },
    { "sha3-224", GNUTLS_DIG_SHA3_224 },
    { "sha3-256", GNUTLS_DIG_SHA3_256 },
    { "sha3-384", GNUTLS_DIG_SHA3_384 },
    { "sha3-512", GNUTLS_DIG_SHA3_512 },
    { "md5",      GNUTLS_DIG_MD5 },
  };

  for (gsize i = 0; hash != NULL && i < G_N_ELEMENTS (digests); i++)
    if (g_ascii_strcasecmp (hash, digests[i].name) == 0)
      return digests[i].dig;
  return GNUTLS_DIG_UNKNOWN;
}

gboolean
caps_hash_known (const char *hash)
{
  return verify_digest (hash) != GNUTLS_DIG_UNKNOWN;
}

char *
caps_hash_ver (const char *hash, const char *s)
{
  gnutls_digest_algorithm_t dig = verify_digest (hash);
  guint8 out[64];

  g_return_val_if_fail (s != NULL, NULL);
  if (dig == GNUTLS_DIG_UNKNOWN || gnutls_hash_get_len (dig) > sizeof out
      || gnutls_hash_fast (dig, s, strlen (s), out) < 0)
    return NULL;
  return g_base64_encode (out, gnutls_hash_get_len (dig));
}

char **
caps_query_features (const MynaStanza *query)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new ();

  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (query, i);
      const char *var;

      if (myna_stanza_is_text (c) || g_strcmp0 (myna_stanza_get_name (c), "feature") != 0
          || (var = myna_stanza_get_attr (c, "var")) == NULL)
        continue;
      g_ptr_array_add (out, g_strdup (var));
    }
  g_ptr_array_sort (out, verify_strcmp);
  for (guint i = 1; i < out->len;)
    if (strcmp (g_ptr_array_index (out, i - 1), g_ptr_array_index (out, i)) == 0)
      g_free (g_ptr_array_steal_index (out, i));
    else
      i++;
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}
