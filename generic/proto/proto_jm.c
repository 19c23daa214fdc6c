/*
 * proto_jm.c --
 *
 *	Job Manager's own files: the JDC, the keyset, the project (.jprj) and
 *	the settings that set_hsm_params keeps (proto_jm.h; bytes in
 *	docs/FORMATS.md).  Encoders write TLV records with proto.h's writer;
 *	decoders use the record decoder of proto_int.h, so every refusal says
 *	which file, which element and which field ("project
 *	'./MyProject/MyProject.jprj': job 1: task 1: field 'state' ...").
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "proto.h"
#include "proto_int.h"
#include "proto_jm.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

char *
jm_strdup(const char *s)
{
    size_t n;
    char *copy;

    if (s == NULL) {
	return NULL;
    }
    n = strlen(s) + 1;
    if ((copy = malloc(n)) != NULL) {
	memcpy(copy, s, n);
    }
    return copy;
}

/* Frees n bytes after cleansing them (NULL is fine). */
static void
ClearFree(void *p, size_t n)
{
    if (p != NULL) {
	OPENSSL_cleanse(p, n);
	free(p);
    }
}

/*
 * FreeStrings --
 *	Frees an array of n malloc'ed strings and the array.
 */
static void
FreeStrings(char **list, size_t n)
{
    size_t i;

    if (list != NULL) {
	for (i = 0; i < n; i++) {
	    free(list[i]);
	}
	free(list);
    }
}

/* Stores a string item only when the string is set (optional fields). */
static void
PutOptStr(ProtoBuf *b, uint16_t tag, const char *s)
{
    if (s != NULL && s[0] != '\0') {
	proto_put_str(b, tag, s);
    }
}

/*
 * Features --
 *	The names of the JM_FEATURE_* bits, in their canonical order.
 */
static const struct {
    const char *name;
    int bit;
} features[] = {
    {"SECURITY", JM_FEATURE_SECURITY},
    {"FABRIC", JM_FEATURE_FABRIC},
    {"ENVM", JM_FEATURE_ENVM},
    {"SNVM", JM_FEATURE_SNVM},
};
#define N_FEATURES (sizeof(features) / sizeof(features[0]))

/*
 * jm_features_parse --
 *	Feature names (SECURITY FABRIC ENVM SNVM, any case, separated by
 *	spaces, commas or |) to JM_FEATURE_* bits; an unknown word is named.
 */
int
jm_features_parse(const char *text, int *bits, ProtoError *err)
{
    const char *p = text;

    *bits = 0;
    while (*p != '\0') {
	size_t n, i;
	int found = 0;

	while (*p == ' ' || *p == '\t' || *p == ',' || *p == '|'
		|| *p == '{' || *p == '}' || *p == '\n') {
	    p++;
	}
	if (*p == '\0') {
	    break;
	}
	n = strcspn(p, " \t,|{}\n");
	for (i = 0; i < N_FEATURES; i++) {
	    if (strlen(features[i].name) == n
		    && strncasecmp(p, features[i].name, n) == 0) {
		*bits |= features[i].bit;
		found = 1;
		break;
	    }
	}
	if (!found) {
	    char word[64];

	    snprintf(word, sizeof(word), "%.*s", (int) (n < 40 ? n : 40), p);
	    return proto_err(err, "unknown feature '%s' (expecting SECURITY, "
		    "FABRIC, ENVM or SNVM)", word);
	}
	p += n;
    }
    if (*bits == 0) {
	return proto_err(err, "no feature given (expecting SECURITY, FABRIC, "
		"ENVM or SNVM)");
    }
    return 0;
}

/*
 * jm_features_format --
 *	JM_FEATURE_* bits to their names in canonical order.
 */
void
jm_features_format(int bits, char *out, size_t outLen)
{
    size_t i, used = 0;

    if (outLen == 0) {
	return;
    }
    out[0] = '\0';
    for (i = 0; i < N_FEATURES; i++) {
	if (bits & features[i].bit) {
	    int n = snprintf(out + used, outLen - used, "%s%s",
		    used ? " " : "", features[i].name);

	    if (n < 0 || (size_t) n >= outLen - used) {
		return;
	    }
	    used += (size_t) n;
	}
    }
}

/* ------------------------------------------------------------------ */
/* JDC                                                                  */
/* ------------------------------------------------------------------ */

enum {
    JDC_FAMILY = 1, JDC_DIE = 2, JDC_DESIGN = 3, JDC_TOOL = 4, JDC_FABRIC = 5,
    JDC_ENVM = 6, JDC_SNVM = 7, JDC_SECURITY = 8
};
enum { CLIENT_NAME = 1, CLIENT_SIZE = 2, CLIENT_DATA = 3 };
enum { NV_NAME = 1, NV_VALUE = 2 };

/*
 * jm_jdc_components --
 *	The components a design provides, as JM_FEATURE_* bits.
 */
int
jm_jdc_components(const JmJdc *jdc)
{
    int bits = 0;

    if (jdc->nSecurity > 0) {
	bits |= JM_FEATURE_SECURITY;
    }
    if (jdc->fabric != NULL && jdc->fabricLen > 0) {
	bits |= JM_FEATURE_FABRIC;
    }
    if (jdc->nEnvm > 0) {
	bits |= JM_FEATURE_ENVM;
    }
    if (jdc->nSnvm > 0) {
	bits |= JM_FEATURE_SNVM;
    }
    return bits;
}

/*
 * PutClients --
 *	Writes the eNVM or sNVM clients of a JDC as nested records.
 */
static void
PutClients(ProtoBuf *b, uint16_t tag, const JmClient *c, size_t n)
{
    size_t i, mark;

    for (i = 0; i < n; i++) {
	mark = proto_begin(b, tag);
	proto_put_str(b, CLIENT_NAME, c[i].name);
	proto_put_u64(b, CLIENT_SIZE, c[i].size);
	proto_put_bytes(b, CLIENT_DATA, c[i].data, c[i].len);
	proto_end(b, mark);
    }
}

/*
 * jm_jdc_encode --
 *	The JDC record (docs/FORMATS.md, "JDC"), fields in tag order.
 */
int
jm_jdc_encode(const JmJdc *jdc, ProtoBuf *out)
{
    size_t i, mark;

    proto_put_str(out, JDC_FAMILY, jdc->family);
    proto_put_str(out, JDC_DIE, jdc->die);
    proto_put_str(out, JDC_DESIGN, jdc->designName);
    PutOptStr(out, JDC_TOOL, jdc->tool);
    if (jdc->fabric != NULL && jdc->fabricLen > 0) {
	proto_put_bytes(out, JDC_FABRIC, jdc->fabric, jdc->fabricLen);
    }
    PutClients(out, JDC_ENVM, jdc->envm, jdc->nEnvm);
    PutClients(out, JDC_SNVM, jdc->snvm, jdc->nSnvm);
    for (i = 0; i < jdc->nSecurity; i++) {
	mark = proto_begin(out, JDC_SECURITY);
	proto_put_str(out, NV_NAME, jdc->security[i].name);
	proto_put_str(out, NV_VALUE, jdc->security[i].value);
	proto_end(out, mark);
    }
    return out->failed ? -1 : 0;
}

/*
 * DecodeClients --
 *	Reads the repeated client records of a JDC: each client's content
 *	at most its size, names unique.
 */
static int
DecodeClients(const ProtoRec *rec, uint16_t tag, const char *plural,
	const char *singular, JmClient **out, size_t *nOut)
{
    ProtoReader r;
    ProtoItem item;
    JmClient *c;
    size_t n, i;

    *out = NULL;
    *nOut = 0;
    if (proto_rec_repeat(rec, tag, plural, JM_MAX_CLIENTS, &n) < 0) {
	return -1;
    }
    if (n == 0) {
	return 0;
    }
    if ((c = calloc(n, sizeof(*c))) == NULL) {
	return proto_rec_fail(rec, "out of memory");
    }
    *out = c;
    *nOut = n;
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < n; i++) {
	ProtoRec sub;

	if (proto_rec_next(&r, tag, &item) != 1
		|| proto_rec_sub(&sub, rec, &item, singular, i + 1) < 0
		|| proto_rec_str(&sub, CLIENT_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &c[i].name) < 0
		|| proto_rec_u64(&sub, CLIENT_SIZE, "size", &c[i].size) < 0
		|| proto_rec_bytes(&sub, CLIENT_DATA, "data", PROTO_F_OPTIONAL,
			JM_MAX_JDC, &c[i].data, &c[i].len) < 0) {
	    return -1;
	}
	if ((uint64_t) c[i].len > c[i].size) {
	    return proto_rec_fail(&sub, "content of %lu bytes is larger than "
		    "the client (%llu bytes)", (unsigned long) c[i].len,
		    (unsigned long long) c[i].size);
	}
    }
    return proto_rec_unique_names(rec, &c[0].name, sizeof(c[0]), n, singular);
}

/*
 * jm_jdc_decode --
 *	Decodes a JDC record; on failure nothing is left allocated.
 */
int
jm_jdc_decode(const uint8_t *body, size_t len, JmJdc *jdc, ProtoError *err)
{
    ProtoRec rec;
    ProtoReader r;
    ProtoItem item;
    size_t n, i;

    memset(jdc, 0, sizeof(*jdc));
    if (proto_rec_open(&rec, body, len, err, "JDC") < 0
	    || proto_rec_str(&rec, JDC_FAMILY, "family", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &jdc->family) < 0
	    || proto_rec_str(&rec, JDC_DIE, "die", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &jdc->die) < 0
	    || proto_rec_str(&rec, JDC_DESIGN, "design name", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &jdc->designName) < 0
	    || proto_rec_str(&rec, JDC_TOOL, "tool", PROTO_F_OPTIONAL,
		    PROTO_MAX_VALUE, &jdc->tool) < 0
	    || proto_rec_bytes(&rec, JDC_FABRIC, "fabric", PROTO_F_OPTIONAL,
		    JM_MAX_JDC, &jdc->fabric, &jdc->fabricLen) < 0
	    || DecodeClients(&rec, JDC_ENVM, "eNVM clients", "eNVM client",
		    &jdc->envm, &jdc->nEnvm) != 0
	    || DecodeClients(&rec, JDC_SNVM, "sNVM clients", "sNVM client",
		    &jdc->snvm, &jdc->nSnvm) != 0
	    || proto_rec_repeat(&rec, JDC_SECURITY, "security settings",
		    JM_MAX_CLIENTS, &n) < 0) {
	goto error;
    }
    if (n > 0) {
	if ((jdc->security = calloc(n, sizeof(*jdc->security))) == NULL) {
	    proto_rec_fail(&rec, "out of memory");
	    goto error;
	}
	jdc->nSecurity = n;
	proto_reader_init(&r, rec.data, rec.len);
	for (i = 0; i < n; i++) {
	    ProtoRec sub;

	    if (proto_rec_next(&r, JDC_SECURITY, &item) != 1
		    || proto_rec_sub(&sub, &rec, &item, "security setting", i + 1) < 0
		    || proto_rec_str(&sub, NV_NAME, "name", PROTO_F_NONEMPTY,
			    PROTO_MAX_NAME, &jdc->security[i].name) < 0
		    || proto_rec_str(&sub, NV_VALUE, "value", 0,
			    PROTO_MAX_VALUE, &jdc->security[i].value) < 0) {
		goto error;
	    }
	}
	if (proto_rec_unique_names(&rec, &jdc->security[0].name,
		sizeof(jdc->security[0]), n, "security setting") < 0) {
	    goto error;
	}
    }
    return 0;

  error:
    jm_jdc_free(jdc);
    return -1;
}

/*
 * FreeClients --
 *	Frees an array of clients.
 */
static void
FreeClients(JmClient *c, size_t n)
{
    size_t i;

    if (c != NULL) {
	for (i = 0; i < n; i++) {
	    free(c[i].name);
	    free(c[i].data);
	}
	free(c);
    }
}

/*
 * jm_jdc_free --
 *	Frees what a decoded JDC holds and zeroes it.
 */
void
jm_jdc_free(JmJdc *jdc)
{
    size_t i;

    free(jdc->family);
    free(jdc->die);
    free(jdc->designName);
    free(jdc->tool);
    free(jdc->fabric);
    FreeClients(jdc->envm, jdc->nEnvm);
    FreeClients(jdc->snvm, jdc->nSnvm);
    if (jdc->security != NULL) {
	for (i = 0; i < jdc->nSecurity; i++) {
	    free(jdc->security[i].name);
	    free(jdc->security[i].value);
	}
	free(jdc->security);
    }
    memset(jdc, 0, sizeof(*jdc));
}

/*
 * jm_jdc_write --
 *	A JDC file image: envelope type JDC, DIGEST, zlib when it pays.
 */
int
jm_jdc_write(const JmJdc *jdc, uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    if (jm_jdc_encode(jdc, &b) != 0) {
	proto_buf_free(&b);
	return proto_err(err, "JDC: cannot encode (out of memory)");
    }
    rc = proto_container_write(PROTO_FILE_JDC, PROTO_AUTH_DIGEST, 1, b.data,
	    b.len, NULL, NULL, NULL, image, len, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * jm_jdc_read --
 *	Checks a JDC file image (envelope, digest) and decodes it, naming
 *	the file in every message.
 */
int
jm_jdc_read(const uint8_t *image, size_t len, const char *what, JmJdc *jdc,
	ProtoError *err)
{
    ProtoContainer c;
    int rc;

    memset(jdc, 0, sizeof(*jdc));
    if (proto_container_read(image, len, PROTO_FILE_JDC, NULL, JM_MAX_JDC,
	    what, &c, err) != 0) {
	return -1;
    }
    if (c.auth != PROTO_AUTH_DIGEST) {
	proto_container_free(&c);
	return proto_err(err, "%s: unexpected authentication kind %d",
		what, (int) c.auth);
    }
    rc = jm_jdc_decode(c.body, c.bodyLen, jdc, err);
    proto_container_free(&c);
    if (rc != 0) {
	/* Name the file in the message. */
	ProtoError inner = *err;

	proto_err(err, "%s: %s", what, inner.msg);
    }
    return rc;
}

/*
 * jm_generate_content --
 *	Reproducible stand-in design data (see proto_jm.h): AES-256-CTR
 *	keystream under SHA-384 of a context, the label and the seed.
 */
int
jm_generate_content(const char *seed, const char *label, uint8_t *out,
	size_t len, ProtoError *err)
{
    static const char context[] = "spps jdc content v1";
    uint8_t digest[PROTO_DIGEST], iv[16];
    EVP_MD_CTX *md = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    EVP_CIPHER *aes = NULL;
    int ok = 0, outl;
    size_t done;

    memset(iv, 0, sizeof(iv));
    memset(out, 0, len);
    if ((md = EVP_MD_CTX_new()) == NULL
	    || !EVP_DigestInit_ex2(md, EVP_sha384(), NULL)
	    || !EVP_DigestUpdate(md, context, sizeof(context) - 1)
	    || !EVP_DigestUpdate(md, label, strlen(label))
	    || !EVP_DigestUpdate(md, "", 1)
	    || !EVP_DigestUpdate(md, seed, strlen(seed))
	    || !EVP_DigestFinal_ex(md, digest, NULL)
	    || (aes = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL)) == NULL
	    || (ctx = EVP_CIPHER_CTX_new()) == NULL
	    || !EVP_EncryptInit_ex2(ctx, aes, digest, iv, NULL)) {
	goto done;
    }
    for (done = 0; done < len; ) {
	size_t chunk = len - done > (1u << 20) ? (1u << 20) : len - done;

	if (!EVP_EncryptUpdate(ctx, out + done, &outl, out + done, (int) chunk)
		|| (size_t) outl != chunk) {
	    goto done;
	}
	done += chunk;
    }
    ok = 1;

  done:
    EVP_MD_CTX_free(md);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(aes);
    if (!ok) {
	return proto_err_ossl(err, "design content generation");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Keyset                                                               */
/* ------------------------------------------------------------------ */

const char *const jm_key_names[] = {
    "KIP", "UEK1", "UEK2", "UEK3", "UPK1", "UPK2", "DPK",
    "UEK1_BASE", "UEK2_BASE", "UEK3_BASE", "UPK1_BASE", "UPK2_BASE",
    "DPK_BASE", NULL
};

const char *const jm_user_keys[] = {
    "UEK1", "UEK2", "UEK3", "UPK1", "UPK2", "DPK", NULL
};

/*
 * jm_key_index --
 *	The index of a key name in jm_key_names (any case), or -1.
 */
int
jm_key_index(const char *name)
{
    int i;

    for (i = 0; jm_key_names[i] != NULL; i++) {
	if (strcasecmp(name, jm_key_names[i]) == 0) {
	    return i;
	}
    }
    return -1;
}

enum {
    KS_ID = 1, KS_UHSM = 2, KS_MASTER = 3, KS_CREATED = 4, KS_ORIGIN = 5,
    KS_NAME = 6, KS_WRAPPED = 7, KS_SEALED = 8
};
enum { KEY_ITEM = 1 };
enum { KEY_NAME = 1, KEY_VALUE = 2 };

/* The header fields, in order (shared by the file body and the AAD). */
static void
PutKeysetHeader(ProtoBuf *b, const JmKeyset *ks)
{
    size_t i;

    proto_put_bytes(b, KS_ID, ks->id, JM_KEYSET_ID);
    proto_put_str(b, KS_UHSM, ks->uhsmUuid);
    proto_put_str(b, KS_MASTER, ks->masterUuid);
    proto_put_u64(b, KS_CREATED, ks->created);
    proto_put_str(b, KS_ORIGIN, ks->origin ? ks->origin : "");
    for (i = 0; i < ks->nNames; i++) {
	proto_put_str(b, KS_NAME, ks->names[i]);
    }
}

/*
 * jm_keyset_header --
 *	The keyset header: the AAD of both of its ciphertexts.
 */
int
jm_keyset_header(const JmKeyset *ks, ProtoBuf *out)
{
    proto_put_str(out, PROTO_TAG_CONTEXT, "spps keyset header v1");
    PutKeysetHeader(out, ks);
    return out->failed ? -1 : 0;
}

/*
 * jm_keyset_write --
 *	A keyset file image: header, wrapped ticket key, encrypted keys;
 *	envelope type KEYSET, DIGEST (the secrets are authenticated by GCM).
 */
int
jm_keyset_write(const JmKeyset *ks, uint8_t **image, size_t *len,
	ProtoError *err)
{
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    PutKeysetHeader(&b, ks);
    proto_put_bytes(&b, KS_WRAPPED, ks->wrappedTicketKey, ks->wrappedLen);
    proto_put_bytes(&b, KS_SEALED, ks->sealedKeys, ks->sealedLen);
    if (b.failed) {
	proto_buf_free(&b);
	return proto_err(err, "keyset: cannot encode (out of memory)");
    }
    /*
     * DIGEST: the secrets are authenticated by the U-HSM (AES-GCM with
     * the header as AAD); the digest catches plain corruption early, with
     * a message that says so.
     */
    rc = proto_container_write(PROTO_FILE_KEYSET, PROTO_AUTH_DIGEST, 0,
	    b.data, b.len, NULL, NULL, NULL, image, len, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * jm_keyset_read --
 *	Checks a keyset file's envelope and decodes its fields; the key
 *	names must be known, unique and in canonical order.  Decrypting is
 *	the U-HSM's (role_uhsm.c).
 */
int
jm_keyset_read(const uint8_t *image, size_t len, const char *what,
	JmKeyset *ks, ProtoError *err)
{
    ProtoContainer c;
    ProtoRec rec;
    ProtoReader r;
    ProtoItem item;
    size_t n, i;
    int prev = -1;

    memset(ks, 0, sizeof(*ks));
    if (proto_container_read(image, len, PROTO_FILE_KEYSET, NULL,
	    JM_MAX_KEYSET, what, &c, err) != 0) {
	return -1;
    }
    if (proto_rec_open(&rec, c.body, c.bodyLen, err, "%s", what) < 0
	    || proto_rec_fixed(&rec, KS_ID, "id", ks->id, JM_KEYSET_ID) < 0
	    || proto_rec_uuid(&rec, KS_UHSM, "U-HSM UUID", 0, ks->uhsmUuid) < 0
	    || proto_rec_uuid(&rec, KS_MASTER, "master key UUID", 0,
		    ks->masterUuid) < 0
	    || proto_rec_u64(&rec, KS_CREATED, "created", &ks->created) < 0
	    || proto_rec_str(&rec, KS_ORIGIN, "origin", 0, PROTO_MAX_VALUE,
		    &ks->origin) < 0
	    || proto_rec_repeat(&rec, KS_NAME, "key names", 32, &n) < 0
	    || proto_rec_bytes(&rec, KS_WRAPPED, "wrapped ticket key", 0,
		    1024, &ks->wrappedTicketKey, &ks->wrappedLen) < 0
	    || proto_rec_bytes(&rec, KS_SEALED, "encrypted keys", 0,
		    JM_MAX_KEYSET, &ks->sealedKeys, &ks->sealedLen) < 0) {
	goto error;
    }
    if (n > 0) {
	if ((ks->names = calloc(n, sizeof(char *))) == NULL) {
	    proto_rec_fail(&rec, "out of memory");
	    goto error;
	}
	ks->nNames = n;
	proto_reader_init(&r, rec.data, rec.len);
	for (i = 0; i < n; i++) {
	    int idx;

	    if (proto_rec_next(&r, KS_NAME, &item) != 1
		    || proto_item_str(&item, &ks->names[i]) != 0) {
		proto_rec_fail(&rec, "key name %lu is not text",
			(unsigned long) (i + 1));
		goto error;
	    }
	    idx = jm_key_index(ks->names[i]);
	    if (idx < 0 || strcmp(ks->names[i], jm_key_names[idx]) != 0
		    || idx <= prev) {
		char q[64];

		proto_quote(ks->names[i], q, sizeof(q));
		proto_rec_fail(&rec, "key name '%s' is unknown, repeated or "
			"out of order", q);
		goto error;
	    }
	    prev = idx;
	}
    }
    proto_container_free(&c);
    return 0;

  error:
    proto_container_free(&c);
    jm_keyset_free(ks);
    return -1;
}

/*
 * jm_keyset_free --
 *	Frees what a decoded keyset holds and zeroes it.
 */
void
jm_keyset_free(JmKeyset *ks)
{
    free(ks->origin);
    FreeStrings(ks->names, ks->nNames);
    free(ks->wrappedTicketKey);
    free(ks->sealedKeys);
    memset(ks, 0, sizeof(*ks));
}

/*
 * jm_keys_encode --
 *	The secret key record of a keyset: name and 32-byte value per key.
 */
int
jm_keys_encode(const ProtoNamedBytes *keys, size_t n, ProtoBuf *out)
{
    size_t i, mark;

    for (i = 0; i < n; i++) {
	mark = proto_begin(out, KEY_ITEM);
	proto_put_str(out, KEY_NAME, keys[i].name);
	proto_put_bytes(out, KEY_VALUE, keys[i].data, keys[i].len);
	proto_end(out, mark);
    }
    return out->failed ? -1 : 0;
}

/*
 * jm_keys_decode --
 *	Decodes the secret key record: known names, unique, 32 bytes each.
 */
int
jm_keys_decode(const uint8_t *body, size_t len, ProtoNamedBytes **keysOut,
	size_t *nOut, ProtoError *err)
{
    ProtoRec rec;
    ProtoReader r;
    ProtoItem item;
    ProtoNamedBytes *keys = NULL;
    size_t n = 0, i;

    *keysOut = NULL;
    *nOut = 0;
    if (proto_rec_open(&rec, body, len, err, "keyset keys") < 0
	    || proto_rec_repeat(&rec, KEY_ITEM, "keys", 32, &n) < 0) {
	return -1;
    }
    if (n > 0 && (keys = calloc(n, sizeof(*keys))) == NULL) {
	return proto_rec_fail(&rec, "out of memory");
    }
    proto_reader_init(&r, rec.data, rec.len);
    for (i = 0; i < n; i++) {
	ProtoRec sub;

	if (proto_rec_next(&r, KEY_ITEM, &item) != 1
		|| proto_rec_sub(&sub, &rec, &item, "key", i + 1) < 0
		|| proto_rec_str(&sub, KEY_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &keys[i].name) < 0
		|| proto_rec_bytes(&sub, KEY_VALUE, "value", 0, PROTO_KEY,
			&keys[i].data, &keys[i].len) < 0) {
	    goto error;
	}
	if (jm_key_index(keys[i].name) < 0 || keys[i].len != PROTO_KEY) {
	    proto_rec_fail(&sub, "not a key of a keyset, or not %d bytes",
		    PROTO_KEY);
	    goto error;
	}
    }
    if (n > 0 && proto_rec_unique_names(&rec, &keys[0].name, sizeof(keys[0]),
	    n, "key") < 0) {
	goto error;
    }
    *keysOut = keys;
    *nOut = n;
    return 0;

  error:
    jm_keys_free(keys, n);
    return -1;
}

/*
 * jm_keys_free --
 *	Cleanses and frees decoded keys.
 */
void
jm_keys_free(ProtoNamedBytes *keys, size_t n)
{
    size_t i;

    if (keys == NULL) {
	return;
    }
    for (i = 0; i < n; i++) {
	free(keys[i].name);
	ClearFree(keys[i].data, keys[i].len);
    }
    free(keys);
}

/* ------------------------------------------------------------------ */
/* Project                                                              */
/* ------------------------------------------------------------------ */

enum {
    PRJ_NAME = 1, PRJ_CREATED = 2, PRJ_UHSM = 3, PRJ_DATA = 4, PRJ_JOB = 5
};
enum {
    PD_NAME = 1, PD_SOURCE = 2, PD_DIGEST = 3, PD_JDC = 4, PD_KEYSET_NAME = 5,
    PD_KEYSET = 6, PD_ENVM_UPDATE = 7, PD_SNVM_UPDATE = 8, PD_BITSTREAM = 9
};
enum { UPD_CLIENT = 1, UPD_SOURCE = 2, UPD_DATA = 3 };
enum {
    BS_NAME = 1, BS_TYPE = 2, BS_FEATURES = 3, BS_PROTOCOL = 4, BS_KEYMODE = 5,
    BS_COC = 6, BS_ENVM_CLIENT = 7, BS_PER_DEVICE = 8
};
enum { JOB_NAME = 1, JOB_TYPE = 2, JOB_DEVICE = 3, JOB_TASK = 4 };
enum { DEV_NAME = 1, DEV_HWLOC = 2, DEV_DATA = 3, DEV_BITSTREAM = 4 };
enum {
    TASK_NAME = 1, TASK_INTERNAL = 2, TASK_STATE = 3, TASK_TICKET = 4,
    TASK_REQ_DIGEST = 5, TASK_MHSM = 6, TASK_REQ_FILE = 7, TASK_REQUESTED = 8,
    TASK_REPLY_DIGEST = 9, TASK_MHSM_CERT = 10, TASK_BINDING = 11,
    TASK_REPLIED = 12, TASK_JOB_FILE = 13, TASK_EXPORTED = 14,
    TASK_JOB_DIGEST = 15, TASK_EXPORTED_BS = 16, TASK_STATUS = 17
};
enum { TKT_NAME = 1, TKT_DEVICE = 2, TKT_ACTION = 3, TKT_MAX = 4, TKT_ID = 5 };
enum { EXP_DATA = 1, EXP_BITSTREAM = 2, EXP_DIGEST = 3, EXP_KIP = 4 };
enum {
    ST_FILE = 1, ST_IMPORTED = 2, ST_DIGEST = 3, ST_SEQUENCE = 4, ST_END = 5,
    ST_VALID = 6, ST_SUMMARY = 7, ST_IMAGE = 8
};

/* Limits on the number of elements of each kind. */
#define MAX_ELEMENTS 4096

/*
 * PutUpdates --
 *	Writes eNVM or sNVM updates of a programming data entry.
 */
static void
PutUpdates(ProtoBuf *b, uint16_t tag, const JmUpdate *u, size_t n)
{
    size_t i, mark;

    for (i = 0; i < n; i++) {
	mark = proto_begin(b, tag);
	proto_put_str(b, UPD_CLIENT, u[i].client);
	proto_put_str(b, UPD_SOURCE, u[i].source ? u[i].source : "");
	proto_put_bytes(b, UPD_DATA, u[i].data, u[i].len);
	proto_end(b, mark);
    }
}

/*
 * PutBitstream --
 *	Writes one bitstream definition.
 */
static void
PutBitstream(ProtoBuf *b, const JmBitstreamDef *bs)
{
    size_t mark = proto_begin(b, PD_BITSTREAM), i;

    proto_put_str(b, BS_NAME, bs->name);
    proto_put_str(b, BS_TYPE, bs->type);
    proto_put_u64(b, BS_FEATURES, (uint64_t) bs->features);
    proto_put_str(b, BS_PROTOCOL, bs->protocol ? bs->protocol : "");
    proto_put_str(b, BS_KEYMODE, bs->keyMode ? bs->keyMode : "");
    proto_put_u8(b, BS_COC, (uint8_t) (bs->generateCoc != 0));
    for (i = 0; i < bs->nEnvmClients; i++) {
	proto_put_str(b, BS_ENVM_CLIENT, bs->envmClients[i]);
    }
    for (i = 0; i < bs->nPerDevice; i++) {
	proto_put_str(b, BS_PER_DEVICE, bs->perDevice[i]);
    }
    proto_end(b, mark);
}

/*
 * PutProgData --
 *	Writes one programming data entry (JDC and keyset images included).
 */
static void
PutProgData(ProtoBuf *b, const JmProgData *d)
{
    size_t mark = proto_begin(b, PRJ_DATA), i;

    proto_put_str(b, PD_NAME, d->name);
    proto_put_str(b, PD_SOURCE, d->jdcSource ? d->jdcSource : "");
    proto_put_bytes(b, PD_DIGEST, d->jdcDigest, PROTO_DIGEST);
    proto_put_bytes(b, PD_JDC, d->jdc, d->jdcLen);
    if (d->keysetName != NULL) {
	proto_put_str(b, PD_KEYSET_NAME, d->keysetName);
	proto_put_bytes(b, PD_KEYSET, d->keyset, d->keysetLen);
    }
    PutUpdates(b, PD_ENVM_UPDATE, d->envmUpdates, d->nEnvmUpdates);
    PutUpdates(b, PD_SNVM_UPDATE, d->snvmUpdates, d->nSnvmUpdates);
    for (i = 0; i < d->nBitstreams; i++) {
	PutBitstream(b, &d->bitstreams[i]);
    }
    proto_end(b, mark);
}

/*
 * PutTask --
 *	Writes one HSM task: the fields of its state and those before it.
 */
static void
PutTask(ProtoBuf *b, const JmTask *t)
{
    size_t mark = proto_begin(b, JOB_TASK), i, m;

    proto_put_str(b, TASK_NAME, t->name);
    proto_put_u8(b, TASK_INTERNAL, (uint8_t) (t->internal != 0));
    proto_put_u64(b, TASK_STATE, (uint64_t) t->state);
    for (i = 0; i < t->nTickets; i++) {
	const JmTicket *k = &t->tickets[i];

	m = proto_begin(b, TASK_TICKET);
	proto_put_str(b, TKT_NAME, k->name);
	proto_put_str(b, TKT_DEVICE, k->device);
	proto_put_str(b, TKT_ACTION, k->action);
	proto_put_i64(b, TKT_MAX, k->maxDevices);
	if (k->hasId) {
	    proto_put_bytes(b, TKT_ID, k->id, PROTO_TICKET_ID);
	}
	proto_end(b, m);
    }
    if (t->state >= JM_TASK_REQUESTED) {
	proto_put_bytes(b, TASK_REQ_DIGEST, t->requestDigest, PROTO_DIGEST);
	proto_put_str(b, TASK_MHSM, t->mhsmUuid);
	proto_put_str(b, TASK_REQ_FILE, t->requestFile ? t->requestFile : "");
	proto_put_u64(b, TASK_REQUESTED, t->requested);
    }
    if (t->state >= JM_TASK_BOUND) {
	proto_put_bytes(b, TASK_REPLY_DIGEST, t->replyDigest, PROTO_DIGEST);
	proto_cert_put(b, TASK_MHSM_CERT, &t->mhsmCert);
	proto_put_bytes(b, TASK_BINDING, t->bindingNonce, PROTO_NONCE);
	proto_put_u64(b, TASK_REPLIED, t->replied);
    }
    if (t->state >= JM_TASK_EXPORTED) {
	proto_put_str(b, TASK_JOB_FILE, t->jobFile ? t->jobFile : "");
	proto_put_u64(b, TASK_EXPORTED, t->exported);
	proto_put_bytes(b, TASK_JOB_DIGEST, t->jobDigest, PROTO_DIGEST);
	for (i = 0; i < t->nExported; i++) {
	    const JmExportedBitstream *e = &t->exportedBs[i];

	    m = proto_begin(b, TASK_EXPORTED_BS);
	    proto_put_str(b, EXP_DATA, e->dataName);
	    proto_put_str(b, EXP_BITSTREAM, e->bitstreamName);
	    proto_put_bytes(b, EXP_DIGEST, e->designDigest, PROTO_DIGEST);
	    proto_put_bytes(b, EXP_KIP, e->wrappedKip, e->wrappedKipLen);
	    proto_end(b, m);
	}
    }
    for (i = 0; i < t->nStatuses; i++) {
	const JmStatusRecord *s = &t->statuses[i];

	m = proto_begin(b, TASK_STATUS);
	proto_put_str(b, ST_FILE, s->file ? s->file : "");
	proto_put_u64(b, ST_IMPORTED, s->imported);
	proto_put_bytes(b, ST_DIGEST, s->digest, PROTO_DIGEST);
	proto_put_u64(b, ST_SEQUENCE, s->sequence);
	proto_put_u8(b, ST_END, (uint8_t) (s->isEnd != 0));
	proto_put_u8(b, ST_VALID, (uint8_t) (s->valid != 0));
	proto_put_str(b, ST_SUMMARY, s->summary ? s->summary : "");
	proto_put_bytes(b, ST_IMAGE, s->image, s->imageLen);
	proto_end(b, m);
    }
    proto_end(b, mark);
}

/*
 * PutJob --
 *	Writes one job: devices, then tasks.
 */
static void
PutJob(ProtoBuf *b, const JmJob *j)
{
    size_t mark = proto_begin(b, PRJ_JOB), i, m;

    proto_put_str(b, JOB_NAME, j->name);
    proto_put_str(b, JOB_TYPE, j->type);
    for (i = 0; i < j->nDevices; i++) {
	const JmDevice *d = &j->devices[i];

	m = proto_begin(b, JOB_DEVICE);
	proto_put_str(b, DEV_NAME, d->name);
	proto_put_i64(b, DEV_HWLOC, d->hwLocation);
	proto_put_str(b, DEV_DATA, d->dataName);
	proto_put_str(b, DEV_BITSTREAM, d->bitstreamName);
	proto_end(b, m);
    }
    for (i = 0; i < j->nTasks; i++) {
	PutTask(b, &j->tasks[i]);
    }
    proto_end(b, mark);
}

/*
 * jm_project_encode --
 *	The project record (docs/FORMATS.md, "Job Manager project"):
 *	deterministic, so an unchanged project saves to the same bytes.
 */
int
jm_project_encode(const JmProject *p, ProtoBuf *out)
{
    size_t i;

    proto_put_str(out, PRJ_NAME, p->name);
    proto_put_u64(out, PRJ_CREATED, p->created);
    proto_put_str(out, PRJ_UHSM, p->uhsmUuid);
    for (i = 0; i < p->nData; i++) {
	PutProgData(out, &p->data[i]);
    }
    for (i = 0; i < p->nJobs; i++) {
	PutJob(out, &p->jobs[i]);
    }
    return out->failed ? -1 : 0;
}

/*
 * Decoding.  Each element decoder fills a zeroed struct; on failure the
 * caller frees what was filled (the destructors accept partial elements).
 */

static int
DecodeStrings(const ProtoRec *rec, uint16_t tag, const char *plural,
	char ***out, size_t *nOut)
{
    ProtoReader r;
    ProtoItem item;
    size_t n, i;

    *out = NULL;
    *nOut = 0;
    if (proto_rec_repeat(rec, tag, plural, MAX_ELEMENTS, &n) < 0) {
	return -1;
    }
    if (n == 0) {
	return 0;
    }
    if ((*out = calloc(n, sizeof(char *))) == NULL) {
	return proto_rec_fail(rec, "out of memory");
    }
    *nOut = n;
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < n; i++) {
	if (proto_rec_next(&r, tag, &item) != 1
		|| item.len == 0 || item.len > PROTO_MAX_NAME
		|| proto_item_str(&item, &(*out)[i]) != 0) {
	    return proto_rec_fail(rec, "%s: item %lu is not a name", plural,
		    (unsigned long) (i + 1));
	}
    }
    return 0;
}

/*
 * Each<Kind> --
 *	Walks the n repeated items of tag in rec, calling fn on each with a
 *	sub-record named "<singular> <i>" and the i-th element of an array of
 *	size bytes it allocates.
 */
typedef int (ElementFn)(ProtoRec *sub, void *element);

/*
 * DecodeArray --
 *	Decodes the repeated items of a tag into a new array, calling fn on
 *	each with a sub-record named for messages ("<singular> <i>").
 */
static int
DecodeArray(const ProtoRec *rec, uint16_t tag, const char *plural,
	const char *singular, size_t size, ElementFn *fn, void **out,
	size_t *nOut)
{
    ProtoReader r;
    ProtoItem item;
    size_t n, i;
    uint8_t *arr;

    *out = NULL;
    *nOut = 0;
    if (proto_rec_repeat(rec, tag, plural, MAX_ELEMENTS, &n) < 0) {
	return -1;
    }
    if (n == 0) {
	return 0;
    }
    if ((arr = calloc(n, size)) == NULL) {
	return proto_rec_fail(rec, "out of memory");
    }
    *out = arr;
    *nOut = n;
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < n; i++) {
	ProtoRec sub;

	if (proto_rec_next(&r, tag, &item) != 1
		|| proto_rec_sub(&sub, rec, &item, singular, i + 1) < 0
		|| fn(&sub, arr + i * size) != 0) {
	    return -1;
	}
    }
    return 0;
}

/*
 * DecodeUpdate --
 *	Decodes an eNVM or sNVM update.
 */
static int
DecodeUpdate(ProtoRec *sub, void *element)
{
    JmUpdate *u = element;

    if (proto_rec_str(sub, UPD_CLIENT, "client", PROTO_F_NONEMPTY,
	    PROTO_MAX_NAME, &u->client) < 0
	    || proto_rec_str(sub, UPD_SOURCE, "source", 0, PROTO_MAX_TEXT,
		    &u->source) < 0
	    || proto_rec_bytes(sub, UPD_DATA, "data", PROTO_F_OPTIONAL,
		    JM_MAX_JDC, &u->data, &u->len) < 0) {
	return -1;
    }
    return 0;
}

static const char *const bitstreamTypes[] = {
    "MASTER", "UEK1", "UEK2", "UEK3", "TRUSTED_FACILITY", NULL
};
static const char *const protocols[] = {"", "AUTH_CODE", NULL};
static const char *const keyModes[] = {"", "DFK", "KFP", "KFPE", NULL};

/*
 * DecodeBitstream --
 *	Decodes a bitstream definition; features and per-device keys are
 *	checked against what exists.
 */
static int
DecodeBitstream(ProtoRec *sub, void *element)
{
    JmBitstreamDef *bs = element;
    uint64_t f;
    int coc;
    size_t i;

    if (proto_rec_str(sub, BS_NAME, "name", PROTO_F_NONEMPTY, PROTO_MAX_NAME,
	    &bs->name) < 0
	    || proto_rec_enum(sub, BS_TYPE, "type", bitstreamTypes, 0,
		    &bs->type) < 0
	    || proto_rec_u64(sub, BS_FEATURES, "features", &f) < 0
	    || proto_rec_enum(sub, BS_PROTOCOL, "protocol", protocols, 0,
		    &bs->protocol) < 0
	    || proto_rec_enum(sub, BS_KEYMODE, "key mode", keyModes, 0,
		    &bs->keyMode) < 0
	    || proto_rec_bool(sub, BS_COC, "generate CoC", &coc) < 0
	    || DecodeStrings(sub, BS_ENVM_CLIENT, "eNVM clients",
		    &bs->envmClients, &bs->nEnvmClients) != 0
	    || DecodeStrings(sub, BS_PER_DEVICE, "per-device keys",
		    &bs->perDevice, &bs->nPerDevice) != 0) {
	return -1;
    }
    if (f == 0 || f > (JM_FEATURE_SECURITY | JM_FEATURE_FABRIC
	    | JM_FEATURE_ENVM | JM_FEATURE_SNVM)) {
	return proto_rec_fail(sub, "field 'features' has an invalid value");
    }
    for (i = 0; i < bs->nPerDevice; i++) {
	int k = jm_key_index(bs->perDevice[i]);

	if (k < 1 || k > 6) {
	    return proto_rec_fail(sub, "per-device key %lu is not a user key",
		    (unsigned long) (i + 1));
	}
    }
    bs->features = (int) f;
    bs->generateCoc = coc;
    return 0;
}

/*
 * DecodeProgData --
 *	Decodes a programming data entry and its repeated parts.
 */
static int
DecodeProgData(ProtoRec *sub, void *element)
{
    JmProgData *d = element;
    int rc;
    void *arr;

    if (proto_rec_str(sub, PD_NAME, "name", PROTO_F_NONEMPTY, PROTO_MAX_NAME,
	    &d->name) < 0
	    || proto_rec_str(sub, PD_SOURCE, "JDC source", 0, PROTO_MAX_TEXT,
		    &d->jdcSource) < 0
	    || proto_rec_fixed(sub, PD_DIGEST, "JDC digest", d->jdcDigest,
		    PROTO_DIGEST) < 0
	    || proto_rec_bytes(sub, PD_JDC, "JDC", 0, JM_MAX_JDC, &d->jdc,
		    &d->jdcLen) < 0
	    || (rc = proto_rec_str(sub, PD_KEYSET_NAME, "keyset name",
		    PROTO_F_OPTIONAL | PROTO_F_NONEMPTY, PROTO_MAX_NAME,
		    &d->keysetName)) < 0
	    || proto_rec_bytes(sub, PD_KEYSET, "keyset",
		    rc == 1 ? 0 : PROTO_F_OPTIONAL, JM_MAX_KEYSET, &d->keyset,
		    &d->keysetLen) < 0) {
	return -1;
    }
    if (DecodeArray(sub, PD_ENVM_UPDATE, "eNVM updates", "eNVM update",
	    sizeof(JmUpdate), DecodeUpdate, &arr, &d->nEnvmUpdates) != 0) {
	d->envmUpdates = arr;
	return -1;
    }
    d->envmUpdates = arr;
    if (DecodeArray(sub, PD_SNVM_UPDATE, "sNVM updates", "sNVM update",
	    sizeof(JmUpdate), DecodeUpdate, &arr, &d->nSnvmUpdates) != 0) {
	d->snvmUpdates = arr;
	return -1;
    }
    d->snvmUpdates = arr;
    rc = DecodeArray(sub, PD_BITSTREAM, "bitstreams", "bitstream",
	    sizeof(JmBitstreamDef), DecodeBitstream, &arr, &d->nBitstreams);
    d->bitstreams = arr;
    if (rc != 0) {
	return -1;
    }
    if ((d->nEnvmUpdates > 0 && proto_rec_unique_names(sub,
	    &d->envmUpdates[0].client, sizeof(JmUpdate), d->nEnvmUpdates,
	    "eNVM update") < 0)
	    || (d->nSnvmUpdates > 0 && proto_rec_unique_names(sub,
		    &d->snvmUpdates[0].client, sizeof(JmUpdate),
		    d->nSnvmUpdates, "sNVM update") < 0)
	    || (d->nBitstreams > 0 && proto_rec_unique_names(sub,
		    &d->bitstreams[0].name, sizeof(JmBitstreamDef),
		    d->nBitstreams, "bitstream") < 0)) {
	return -1;
    }
    return 0;
}

/*
 * DecodeDevice --
 *	Decodes a device of a job's chain.
 */
static int
DecodeDevice(ProtoRec *sub, void *element)
{
    JmDevice *d = element;
    ProtoItem item;

    if (proto_rec_str(sub, DEV_NAME, "name", PROTO_F_NONEMPTY, PROTO_MAX_NAME,
	    &d->name) < 0
	    || proto_rec_item(sub, DEV_HWLOC, "hardware location", 0, &item) < 0) {
	return -1;
    }
    if (proto_item_i64(&item, &d->hwLocation) != 0) {
	return proto_rec_fail(sub, "field 'hardware location' is not 8 bytes");
    }
    if (proto_rec_str(sub, DEV_DATA, "programming data", PROTO_F_NONEMPTY,
	    PROTO_MAX_NAME, &d->dataName) < 0
	    || proto_rec_str(sub, DEV_BITSTREAM, "bitstream", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &d->bitstreamName) < 0) {
	return -1;
    }
    return 0;
}

/*
 * DecodeTicket --
 *	Decodes a ticket; its id is optional (present once replied).
 */
static int
DecodeTicket(ProtoRec *sub, void *element)
{
    JmTicket *k = element;
    int rc;

    if (proto_rec_str(sub, TKT_NAME, "name", PROTO_F_NONEMPTY, PROTO_MAX_NAME,
	    &k->name) < 0
	    || proto_rec_str(sub, TKT_DEVICE, "device", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &k->device) < 0
	    || proto_rec_enum(sub, TKT_ACTION, "action", proto_actions, 0,
		    &k->action) < 0
	    || proto_rec_max_devices(sub, TKT_MAX, "max devices",
		    &k->maxDevices) < 0) {
	return -1;
    }
    {
	ProtoItem item;

	rc = proto_rec_item(sub, TKT_ID, "ticket id", PROTO_F_OPTIONAL, &item);
	if (rc < 0) {
	    return -1;
	}
	if (rc == 1) {
	    if (proto_item_fixed(&item, k->id, PROTO_TICKET_ID) != 0) {
		return proto_rec_fail(sub, "field 'ticket id' is not %d bytes",
			PROTO_TICKET_ID);
	    }
	    k->hasId = 1;
	}
    }
    return 0;
}

/*
 * DecodeExported --
 *	Decodes an exported bitstream record (design digest, wrapped KIP).
 */
static int
DecodeExported(ProtoRec *sub, void *element)
{
    JmExportedBitstream *e = element;

    if (proto_rec_str(sub, EXP_DATA, "programming data", PROTO_F_NONEMPTY,
	    PROTO_MAX_NAME, &e->dataName) < 0
	    || proto_rec_str(sub, EXP_BITSTREAM, "bitstream", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &e->bitstreamName) < 0
	    || proto_rec_fixed(sub, EXP_DIGEST, "design digest",
		    e->designDigest, PROTO_DIGEST) < 0
	    || proto_rec_bytes(sub, EXP_KIP, "wrapped KIP", 0, 1024,
		    &e->wrappedKip, &e->wrappedKipLen) < 0) {
	return -1;
    }
    return 0;
}

/*
 * DecodeStatus --
 *	Decodes a status record (a status file as imported).
 */
static int
DecodeStatus(ProtoRec *sub, void *element)
{
    JmStatusRecord *s = element;

    if (proto_rec_str(sub, ST_FILE, "file", 0, PROTO_MAX_TEXT, &s->file) < 0
	    || proto_rec_u64(sub, ST_IMPORTED, "imported", &s->imported) < 0
	    || proto_rec_fixed(sub, ST_DIGEST, "digest", s->digest,
		    PROTO_DIGEST) < 0
	    || proto_rec_u64(sub, ST_SEQUENCE, "sequence", &s->sequence) < 0
	    || proto_rec_bool(sub, ST_END, "end", &s->isEnd) < 0
	    || proto_rec_bool(sub, ST_VALID, "valid", &s->valid) < 0
	    || proto_rec_str(sub, ST_SUMMARY, "summary", 0, PROTO_MAX_TEXT,
		    &s->summary) < 0
	    || proto_rec_bytes(sub, ST_IMAGE, "image", 0, JM_MAX_JDC,
		    &s->image, &s->imageLen) < 0) {
	return -1;
    }
    return 0;
}

/*
 * DecodeTask --
 *	Decodes an HSM task: the fields its state requires.
 */
static int
DecodeTask(ProtoRec *sub, void *element)
{
    JmTask *t = element;
    uint64_t state;
    void *arr;
    int rc;

    if (proto_rec_str(sub, TASK_NAME, "name", PROTO_F_NONEMPTY,
	    PROTO_MAX_NAME, &t->name) < 0
	    || proto_rec_bool(sub, TASK_INTERNAL, "internal", &t->internal) < 0
	    || proto_rec_u64(sub, TASK_STATE, "state", &state) < 0) {
	return -1;
    }
    if (state > JM_TASK_EXPORTED) {
	return proto_rec_fail(sub, "field 'state' has an invalid value");
    }
    t->state = (JmTaskState) state;
    rc = DecodeArray(sub, TASK_TICKET, "tickets", "ticket", sizeof(JmTicket),
	    DecodeTicket, &arr, &t->nTickets);
    t->tickets = arr;
    if (rc != 0 || (t->nTickets > 0 && proto_rec_unique_names(sub,
	    &t->tickets[0].name, sizeof(JmTicket), t->nTickets, "ticket") < 0)) {
	return -1;
    }
    if (t->state >= JM_TASK_REQUESTED
	    && (proto_rec_fixed(sub, TASK_REQ_DIGEST, "request digest",
		    t->requestDigest, PROTO_DIGEST) < 0
		|| proto_rec_uuid(sub, TASK_MHSM, "M-HSM UUID", 0,
			t->mhsmUuid) < 0
		|| proto_rec_str(sub, TASK_REQ_FILE, "request file", 0,
			PROTO_MAX_TEXT, &t->requestFile) < 0
		|| proto_rec_u64(sub, TASK_REQUESTED, "requested",
			&t->requested) < 0)) {
	return -1;
    }
    if (t->state >= JM_TASK_BOUND
	    && (proto_rec_fixed(sub, TASK_REPLY_DIGEST, "reply digest",
		    t->replyDigest, PROTO_DIGEST) < 0
		|| proto_rec_cert(sub, TASK_MHSM_CERT, "M-HSM certificate",
			&t->mhsmCert) < 0
		|| proto_rec_fixed(sub, TASK_BINDING, "binding nonce",
			t->bindingNonce, PROTO_NONCE) < 0
		|| proto_rec_u64(sub, TASK_REPLIED, "replied", &t->replied) < 0)) {
	return -1;
    }
    if (t->state >= JM_TASK_EXPORTED) {
	if (proto_rec_str(sub, TASK_JOB_FILE, "job file", 0, PROTO_MAX_TEXT,
		&t->jobFile) < 0
		|| proto_rec_u64(sub, TASK_EXPORTED, "exported",
			&t->exported) < 0
		|| proto_rec_fixed(sub, TASK_JOB_DIGEST, "job digest",
			t->jobDigest, PROTO_DIGEST) < 0) {
	    return -1;
	}
	rc = DecodeArray(sub, TASK_EXPORTED_BS, "exported bitstreams",
		"exported bitstream", sizeof(JmExportedBitstream),
		DecodeExported, &arr, &t->nExported);
	t->exportedBs = arr;
	if (rc != 0) {
	    return -1;
	}
    }
    rc = DecodeArray(sub, TASK_STATUS, "statuses", "status",
	    sizeof(JmStatusRecord), DecodeStatus, &arr, &t->nStatuses);
    t->statuses = arr;
    return rc;
}

/*
 * DecodeJob --
 *	Decodes a job: devices and tasks, names unique.
 */
static int
DecodeJob(ProtoRec *sub, void *element)
{
    static const char *const jobTypes[] = {"FPExpress", "IHP", NULL};
    JmJob *j = element;
    void *arr;
    int rc;

    if (proto_rec_str(sub, JOB_NAME, "name", PROTO_F_NONEMPTY, PROTO_MAX_NAME,
	    &j->name) < 0
	    || proto_rec_enum(sub, JOB_TYPE, "type", jobTypes, 0, &j->type) < 0) {
	return -1;
    }
    rc = DecodeArray(sub, JOB_DEVICE, "devices", "device", sizeof(JmDevice),
	    DecodeDevice, &arr, &j->nDevices);
    j->devices = arr;
    if (rc != 0 || (j->nDevices > 0 && proto_rec_unique_names(sub,
	    &j->devices[0].name, sizeof(JmDevice), j->nDevices, "device") < 0)) {
	return -1;
    }
    rc = DecodeArray(sub, JOB_TASK, "tasks", "task", sizeof(JmTask),
	    DecodeTask, &arr, &j->nTasks);
    j->tasks = arr;
    if (rc != 0 || (j->nTasks > 0 && proto_rec_unique_names(sub,
	    &j->tasks[0].name, sizeof(JmTask), j->nTasks, "task") < 0)) {
	return -1;
    }
    return 0;
}

/*
 * jm_project_decode --
 *	Decodes a project record; on failure nothing is left allocated.
 */
int
jm_project_decode(const uint8_t *body, size_t len, JmProject *p,
	ProtoError *err)
{
    ProtoRec rec;
    void *arr;
    int rc;

    memset(p, 0, sizeof(*p));
    if (proto_rec_open(&rec, body, len, err, "project") < 0
	    || proto_rec_str(&rec, PRJ_NAME, "name", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &p->name) < 0
	    || proto_rec_u64(&rec, PRJ_CREATED, "created", &p->created) < 0
	    || proto_rec_uuid(&rec, PRJ_UHSM, "U-HSM UUID", 0, p->uhsmUuid) < 0) {
	goto error;
    }
    rc = DecodeArray(&rec, PRJ_DATA, "programming data", "programming data",
	    sizeof(JmProgData), DecodeProgData, &arr, &p->nData);
    p->data = arr;
    if (rc != 0 || (p->nData > 0 && proto_rec_unique_names(&rec,
	    &p->data[0].name, sizeof(JmProgData), p->nData,
	    "programming data") < 0)) {
	goto error;
    }
    rc = DecodeArray(&rec, PRJ_JOB, "jobs", "job", sizeof(JmJob), DecodeJob,
	    &arr, &p->nJobs);
    p->jobs = arr;
    if (rc != 0 || (p->nJobs > 0 && proto_rec_unique_names(&rec,
	    &p->jobs[0].name, sizeof(JmJob), p->nJobs, "job") < 0)) {
	goto error;
    }
    return 0;

  error:
    jm_project_free(p);
    return -1;
}

/*
 * jm_project_write --
 *	A project file image: envelope type JM_PROJECT, MAC under the
 *	U-HSM's project key, zlib.
 */
int
jm_project_write(const JmProject *p, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    if (jm_project_encode(p, &b) != 0) {
	proto_buf_free(&b);
	return proto_err(err, "project: cannot encode (out of memory)");
    }
    rc = proto_container_write(PROTO_FILE_JM_PROJECT, PROTO_AUTH_MAC, 1,
	    b.data, b.len, macKey, NULL, NULL, image, len, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * jm_project_read --
 *	Checks a project file (its MAC: only a MACed file is accepted) and
 *	decodes it.
 */
int
jm_project_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], JmProject *p, ProtoError *err)
{
    ProtoContainer c;
    int rc;

    memset(p, 0, sizeof(*p));
    if (proto_container_read(image, len, PROTO_FILE_JM_PROJECT, macKey,
	    JM_MAX_PROJECT, what, &c, err) != 0) {
	return -1;
    }
    if (c.auth != PROTO_AUTH_MAC) {
	proto_container_free(&c);
	return proto_err(err, "%s: not authenticated by a U-HSM", what);
    }
    rc = jm_project_decode(c.body, c.bodyLen, p, err);
    proto_container_free(&c);
    if (rc != 0) {
	ProtoError inner = *err;

	proto_err(err, "%s: %s", what, inner.msg);
    }
    return rc;
}

/*
 * jm_project_copy --
 *	A deep copy, through the encoding.
 */
int
jm_project_copy(const JmProject *p, JmProject *copy, ProtoError *err)
{
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    if (jm_project_encode(p, &b) != 0) {
	proto_buf_free(&b);
	memset(copy, 0, sizeof(*copy));
	return proto_err(err, "project: cannot copy (out of memory)");
    }
    rc = jm_project_decode(b.data, b.len, copy, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * jm_update_free --
 *	Frees an update.
 */
void
jm_update_free(JmUpdate *u)
{
    free(u->client);
    free(u->source);
    free(u->data);
    memset(u, 0, sizeof(*u));
}

/*
 * jm_bitstream_def_free --
 *	Frees a bitstream definition.
 */
void
jm_bitstream_def_free(JmBitstreamDef *b)
{
    free(b->name);
    free(b->type);
    free(b->protocol);
    free(b->keyMode);
    FreeStrings(b->envmClients, b->nEnvmClients);
    FreeStrings(b->perDevice, b->nPerDevice);
    memset(b, 0, sizeof(*b));
}

/*
 * jm_prog_data_free --
 *	Frees a programming data entry.
 */
void
jm_prog_data_free(JmProgData *d)
{
    size_t i;

    free(d->name);
    free(d->jdcSource);
    free(d->jdc);
    free(d->keysetName);
    free(d->keyset);
    for (i = 0; d->envmUpdates != NULL && i < d->nEnvmUpdates; i++) {
	jm_update_free(&d->envmUpdates[i]);
    }
    free(d->envmUpdates);
    for (i = 0; d->snvmUpdates != NULL && i < d->nSnvmUpdates; i++) {
	jm_update_free(&d->snvmUpdates[i]);
    }
    free(d->snvmUpdates);
    for (i = 0; d->bitstreams != NULL && i < d->nBitstreams; i++) {
	jm_bitstream_def_free(&d->bitstreams[i]);
    }
    free(d->bitstreams);
    memset(d, 0, sizeof(*d));
}

/*
 * jm_device_free --
 *	Frees a device.
 */
void
jm_device_free(JmDevice *d)
{
    free(d->name);
    free(d->dataName);
    free(d->bitstreamName);
    memset(d, 0, sizeof(*d));
}

/*
 * jm_ticket_free --
 *	Frees a ticket.
 */
void
jm_ticket_free(JmTicket *t)
{
    free(t->name);
    free(t->device);
    free(t->action);
    memset(t, 0, sizeof(*t));
}

/*
 * jm_exported_free --
 *	Frees an exported bitstream record.
 */
void
jm_exported_free(JmExportedBitstream *e)
{
    free(e->dataName);
    free(e->bitstreamName);
    free(e->wrappedKip);
    memset(e, 0, sizeof(*e));
}

/*
 * jm_status_record_free --
 *	Frees a status record.
 */
void
jm_status_record_free(JmStatusRecord *s)
{
    free(s->file);
    free(s->summary);
    free(s->image);
    memset(s, 0, sizeof(*s));
}

/*
 * jm_task_free --
 *	Frees an HSM task.
 */
void
jm_task_free(JmTask *t)
{
    size_t i;

    free(t->name);
    for (i = 0; t->tickets != NULL && i < t->nTickets; i++) {
	jm_ticket_free(&t->tickets[i]);
    }
    free(t->tickets);
    free(t->requestFile);
    free(t->jobFile);
    for (i = 0; t->exportedBs != NULL && i < t->nExported; i++) {
	jm_exported_free(&t->exportedBs[i]);
    }
    free(t->exportedBs);
    for (i = 0; t->statuses != NULL && i < t->nStatuses; i++) {
	jm_status_record_free(&t->statuses[i]);
    }
    free(t->statuses);
    memset(t, 0, sizeof(*t));
}

/*
 * jm_job_free --
 *	Frees a job.
 */
void
jm_job_free(JmJob *j)
{
    size_t i;

    free(j->name);
    free(j->type);
    for (i = 0; j->devices != NULL && i < j->nDevices; i++) {
	jm_device_free(&j->devices[i]);
    }
    free(j->devices);
    for (i = 0; j->tasks != NULL && i < j->nTasks; i++) {
	jm_task_free(&j->tasks[i]);
    }
    free(j->tasks);
    memset(j, 0, sizeof(*j));
}

/*
 * jm_project_free --
 *	Frees what a project holds and zeroes it.
 */
void
jm_project_free(JmProject *p)
{
    size_t i;

    free(p->name);
    for (i = 0; p->data != NULL && i < p->nData; i++) {
	jm_prog_data_free(&p->data[i]);
    }
    free(p->data);
    for (i = 0; p->jobs != NULL && i < p->nJobs; i++) {
	jm_job_free(&p->jobs[i]);
    }
    free(p->jobs);
    memset(p, 0, sizeof(*p));
}

/*
 * jm_find_data --
 *	The programming data entry of that name, or NULL.
 */
JmProgData *
jm_find_data(const JmProject *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nData; i++) {
	if (strcmp(p->data[i].name, name) == 0) {
	    return &p->data[i];
	}
    }
    return NULL;
}

/*
 * jm_find_bitstream --
 *	The bitstream of that name in an entry, or NULL.
 */
JmBitstreamDef *
jm_find_bitstream(const JmProgData *d, const char *name)
{
    size_t i;

    for (i = 0; i < d->nBitstreams; i++) {
	if (strcmp(d->bitstreams[i].name, name) == 0) {
	    return &d->bitstreams[i];
	}
    }
    return NULL;
}

/*
 * jm_find_job --
 *	The job of that name, or NULL.
 */
JmJob *
jm_find_job(const JmProject *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nJobs; i++) {
	if (strcmp(p->jobs[i].name, name) == 0) {
	    return &p->jobs[i];
	}
    }
    return NULL;
}

/*
 * jm_find_device --
 *	The device of that name in a job, or NULL.
 */
JmDevice *
jm_find_device(const JmJob *j, const char *name)
{
    size_t i;

    for (i = 0; i < j->nDevices; i++) {
	if (strcmp(j->devices[i].name, name) == 0) {
	    return &j->devices[i];
	}
    }
    return NULL;
}

/*
 * jm_find_task --
 *	The HSM task of that name in a job, or NULL.
 */
JmTask *
jm_find_task(const JmJob *j, const char *name)
{
    size_t i;

    for (i = 0; i < j->nTasks; i++) {
	if (strcmp(j->tasks[i].name, name) == 0) {
	    return &j->tasks[i];
	}
    }
    return NULL;
}

/*
 * jm_find_ticket --
 *	The ticket of that name in a task, or NULL.
 */
JmTicket *
jm_find_ticket(const JmTask *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->nTickets; i++) {
	if (strcmp(t->tickets[i].name, name) == 0) {
	    return &t->tickets[i];
	}
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Settings                                                             */
/* ------------------------------------------------------------------ */

enum { SET_OUTER_SERVER = 1, SET_OUTER_INNER = 2 };
enum {
    SET_SERVER = 1, SET_UHSM = 2, SET_MASTER = 3, SET_MHSM = 4,
    SET_KEYSET_DIR = 5, SET_UPDATED = 6
};

/*
 * jm_settings_write --
 *	The settings file: the inner record MACed under the U-HSM's
 *	settings key, inside an outer DIGEST envelope naming the server.
 */
int
jm_settings_write(const JmSettings *s, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf inner, outer;
    uint8_t *innerImage = NULL;
    size_t innerLen = 0;
    int rc = -1;

    proto_buf_init(&inner);
    proto_buf_init(&outer);
    proto_put_str(&inner, SET_SERVER, s->server);
    PutOptStr(&inner, SET_UHSM, s->uhsmUuid);
    PutOptStr(&inner, SET_MASTER, s->masterUuid);
    PutOptStr(&inner, SET_MHSM, s->mhsmUuid);
    PutOptStr(&inner, SET_KEYSET_DIR, s->keysetDir);
    proto_put_u64(&inner, SET_UPDATED, s->updated);
    if (inner.failed) {
	proto_err(err, "settings: cannot encode (out of memory)");
	goto done;
    }
    if (proto_container_write(PROTO_FILE_SETTINGS, PROTO_AUTH_MAC, 0,
	    inner.data, inner.len, macKey, NULL, NULL, &innerImage, &innerLen,
	    err) != 0) {
	goto done;
    }
    proto_put_str(&outer, SET_OUTER_SERVER, s->server);
    proto_put_bytes(&outer, SET_OUTER_INNER, innerImage, innerLen);
    if (outer.failed) {
	proto_err(err, "settings: cannot encode (out of memory)");
	goto done;
    }
    rc = proto_container_write(PROTO_FILE_SETTINGS, PROTO_AUTH_DIGEST, 0,
	    outer.data, outer.len, NULL, NULL, NULL, image, len, err);

  done:
    free(innerImage);
    proto_buf_free(&inner);
    proto_buf_free(&outer);
    return rc;
}

/* Reads the outer envelope: the server name and the inner image. */
static int
ReadOuter(const uint8_t *image, size_t len, const char *what,
	ProtoContainer *c, char **server, ProtoItem *inner, ProtoError *err)
{
    ProtoRec rec;

    *server = NULL;
    if (proto_container_read(image, len, PROTO_FILE_SETTINGS, NULL,
	    JM_MAX_SETTINGS, what, c, err) != 0) {
	return -1;
    }
    if (c->auth != PROTO_AUTH_DIGEST
	    || proto_rec_open(&rec, c->body, c->bodyLen, err, "%s", what) < 0
	    || proto_rec_str(&rec, SET_OUTER_SERVER, "server", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, server) < 0
	    || proto_rec_item(&rec, SET_OUTER_INNER, "settings", 0, inner) < 0) {
	if (c->auth != PROTO_AUTH_DIGEST) {
	    proto_err(err, "%s: unexpected authentication kind", what);
	}
	free(*server);
	*server = NULL;
	proto_container_free(c);
	return -1;
    }
    return 0;
}

/*
 * jm_settings_server --
 *	The server an (unverified) settings file names: which U-HSM to
 *	ask for the key that checks the rest.
 */
int
jm_settings_server(const uint8_t *image, size_t len, const char *what,
	char **server, ProtoError *err)
{
    ProtoContainer c;
    ProtoItem inner;

    if (ReadOuter(image, len, what, &c, server, &inner, err) != 0) {
	return -1;
    }
    proto_container_free(&c);
    return 0;
}

/*
 * jm_settings_read --
 *	Checks both envelopes of a settings file and decodes it.
 */
int
jm_settings_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], JmSettings *s, ProtoError *err)
{
    ProtoContainer outer, inner;
    ProtoItem innerItem;
    ProtoRec rec;
    char *server = NULL, *uuid = NULL;
    int rc = -1, i;
    static const uint16_t uuidTags[3] = {SET_UHSM, SET_MASTER, SET_MHSM};
    static const char *const uuidNames[3] = {
	"U-HSM UUID", "master key UUID", "M-HSM UUID"
    };
    char *uuidOut[3];

    memset(s, 0, sizeof(*s));
    uuidOut[0] = s->uhsmUuid;
    uuidOut[1] = s->masterUuid;
    uuidOut[2] = s->mhsmUuid;
    if (ReadOuter(image, len, what, &outer, &server, &innerItem, err) != 0) {
	return -1;
    }
    if (proto_container_read(innerItem.val, innerItem.len, PROTO_FILE_SETTINGS,
	    macKey, JM_MAX_SETTINGS, what, &inner, err) != 0) {
	goto done;
    }
    if (inner.auth != PROTO_AUTH_MAC) {
	proto_err(err, "%s: the settings are not authenticated by the U-HSM",
		what);
	goto inner;
    }
    if (proto_rec_open(&rec, inner.body, inner.bodyLen, err, "%s", what) < 0
	    || proto_rec_str(&rec, SET_SERVER, "server", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &s->server) < 0
	    || proto_rec_str(&rec, SET_KEYSET_DIR, "keyset directory",
		    PROTO_F_OPTIONAL | PROTO_F_NONEMPTY, PROTO_MAX_TEXT,
		    &s->keysetDir) < 0
	    || proto_rec_u64(&rec, SET_UPDATED, "updated", &s->updated) < 0) {
	goto inner;
    }
    for (i = 0; i < 3; i++) {
	int found = proto_rec_uuid(&rec, uuidTags[i], uuidNames[i],
		PROTO_F_OPTIONAL, uuidOut[i]);

	if (found < 0) {
	    goto inner;
	}
	if (found == 0) {
	    uuidOut[i][0] = '\0';
	}
    }
    if (strcmp(server, s->server) != 0) {
	proto_err(err, "%s: the server names inside do not agree", what);
	goto inner;
    }
    rc = 0;

  inner:
    proto_container_free(&inner);
  done:
    proto_container_free(&outer);
    free(server);
    free(uuid);
    if (rc != 0) {
	jm_settings_free(s);
    }
    return rc;
}

/*
 * jm_settings_free --
 *	Frees what decoded settings hold.
 */
void
jm_settings_free(JmSettings *s)
{
    free(s->server);
    free(s->keysetDir);
    memset(s, 0, sizeof(*s));
}
