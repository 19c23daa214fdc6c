/*
 * test_hsm_crypto.c --
 *
 *	Unit tests of the engine's cryptographic services (hsm_cipher.c,
 *	hsm_sign.c, hsm_misc.c) through the public API: every known-answer
 *	vector of the files in tests/data, round trips, and the error paths.
 *
 *	Keys are imported with hsm_manage_key, wrapped (AES-256-GCM, as the
 *	seed specifies) under the part-unique root KEK that
 *	hsm_export_root_key_encryption_key gives in the default lifecycle.
 *
 *	The data directory is $SPPS_TEST_DATA, else tests/data beside this
 *	source file (make runs the tests from the build directory).
 */

#include "unit.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hsm_api.h"

/* ------------------------------------------------------------------ */
/* Vector files                                                         */
/* ------------------------------------------------------------------ */

#define MAX_FIELDS 16

typedef struct Vector {
    char name[128];
    int n;
    char field[MAX_FIELDS][24];
    char *text[MAX_FIELDS];	/* the value as written */
    uint8_t *bytes[MAX_FIELDS];	/* hex decoded (NULL if not hex) */
    size_t len[MAX_FIELDS];
    int expectOk;
} Vector;

static char dataDir[1024];

static void
FindDataDir(void)
{
    const char *env = getenv("SPPS_TEST_DATA");
    const char *slash;

    if (env != NULL && *env != '\0') {
	snprintf(dataDir, sizeof(dataDir), "%s", env);
	return;
    }
    /* __FILE__ is <srcdir>/tests/c/test_hsm_crypto.c */
    slash = strrchr(__FILE__, '/');
    if (slash == NULL) {
	snprintf(dataDir, sizeof(dataDir), "../data");
    } else {
	snprintf(dataDir, sizeof(dataDir), "%.*s/../data",
		(int) (slash - __FILE__), __FILE__);
    }
}

static uint8_t *
Unhex(const char *s, size_t *len)
{
    size_t n = strlen(s), i;
    uint8_t *out;

    if (n % 2) {
	return NULL;
    }
    out = malloc(n / 2 + 1);
    for (i = 0; i < n / 2; i++) {
	unsigned int b;

	if (sscanf(s + 2 * i, "%2x", &b) != 1 || !strchr("0123456789abcdef",
		s[2 * i]) || !strchr("0123456789abcdef", s[2 * i + 1])) {
	    free(out);
	    return NULL;
	}
	out[i] = (uint8_t) b;
    }
    *len = n / 2;
    return out;
}

static char *
Trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
	s++;
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'
	    || e[-1] == '\r')) {
	*--e = '\0';
    }
    return s;
}

/*
 * LoadVectors --
 *	Reads a vector file of tests/data: "[name]", then
 *	"field = value" lines, "#" comments, blank lines between vectors.
 */
static int
LoadVectors(const char *file, Vector **out)
{
    char path[1200], line[4096];
    FILE *f;
    Vector *v = NULL;
    int count = 0;

    snprintf(path, sizeof(path), "%s/%s", dataDir, file);
    if ((f = fopen(path, "r")) == NULL) {
	fprintf(stderr, "cannot open %s\n", path);
	*out = NULL;
	return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
	char *s = Trim(line), *eq;

	if (*s == '#' || *s == '\0') {
	    continue;
	}
	if (*s == '[') {
	    v = realloc(v, (count + 1) * sizeof(*v));
	    memset(&v[count], 0, sizeof(v[count]));
	    snprintf(v[count].name, sizeof(v[count].name), "%.*s",
		    (int) strcspn(s + 1, "]"), s + 1);
	    count++;
	    continue;
	}
	if (count == 0 || (eq = strchr(s, '=')) == NULL) {
	    fprintf(stderr, "%s: bad line: %s\n", file, s);
	    continue;
	}
	*eq = '\0';
	{
	    Vector *cur = &v[count - 1];
	    char *key = Trim(s), *val = Trim(eq + 1);

	    if (strcmp(key, "expect") == 0) {
		cur->expectOk = strcmp(val, "ok") == 0;
		continue;
	    }
	    if (cur->n == MAX_FIELDS) {
		continue;
	    }
	    snprintf(cur->field[cur->n], sizeof(cur->field[0]), "%s", key);
	    cur->text[cur->n] = strdup(val);
	    cur->bytes[cur->n] = Unhex(val, &cur->len[cur->n]);
	    cur->n++;
	}
    }
    fclose(f);
    *out = v;
    return count;
}

static void
FreeVectors(Vector *v, int count)
{
    int i, j;

    for (i = 0; i < count; i++) {
	for (j = 0; j < v[i].n; j++) {
	    free(v[i].text[j]);
	    free(v[i].bytes[j]);
	}
    }
    free(v);
}

/* The bytes of a field (never NULL: an empty field is a 0-length buffer). */
static const uint8_t *
Field(const Vector *v, const char *name, size_t *len)
{
    static const uint8_t empty[1];
    int i;

    for (i = 0; i < v->n; i++) {
	if (strcmp(v->field[i], name) == 0) {
	    *len = v->len[i];
	    return v->bytes[i] ? v->bytes[i] : empty;
	}
    }
    fprintf(stderr, "vector %s has no field %s\n", v->name, name);
    *len = 0;
    return empty;
}

static const char *
Text(const Vector *v, const char *name)
{
    int i;

    for (i = 0; i < v->n; i++) {
	if (strcmp(v->field[i], name) == 0) {
	    return v->text[i];
	}
    }
    return "";
}

/* ------------------------------------------------------------------ */
/* The HSM under test                                                   */
/* ------------------------------------------------------------------ */

static char stateDir[256];
static hsm_hdl_t sess, ks, km, cipherSvc, macSvc, signSvc, verSvc, hashSvc,
	rngSvc;
static uint8_t rootKek[32];

static int
RemoveEntry(const char *path, const struct stat *sb, int flag,
	struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove(path);
}

static void
Setup(void)
{
    open_session_args_t sargs = {0, 0, 0};
    open_svc_key_store_args_t kargs;
    open_svc_key_management_args_t margs = {0, {0}};
    op_export_root_kek_args_t rargs;
    open_svc_cipher_args_t cargs = {0, {0}};
    open_svc_mac_args_t macArgs = {0, {0}};
    open_svc_sign_gen_args_t gargs = {0, {0}};
    open_svc_sign_ver_args_t vargs = {0, {0}};
    open_svc_hash_args_t hargs = {0, {0}};
    open_svc_rng_args_t nargs = {0, {0}};

    snprintf(stateDir, sizeof(stateDir), "/tmp/spps-crypto-XXXXXX");
    if (mkdtemp(stateDir) == NULL) {
	perror("mkdtemp");
	exit(2);
    }
    memset(&kargs, 0, sizeof(kargs));
    kargs.key_store_identifier = 0x1234;
    kargs.authentication_nonce = 0xabcd;
    kargs.max_updates_number = 100;
    kargs.flags = HSM_SVC_KEY_STORE_FLAGS_CREATE;
    memset(&rargs, 0, sizeof(rargs));
    rargs.out_root_kek = rootKek;
    rargs.root_kek_size = sizeof(rootKek);
    rargs.flags = HSM_OP_EXPORT_ROOT_KEK_FLAGS_UNIQUE_KEK;
    if (hsm_spps_open_session_at(stateDir, &sargs, &sess) != HSM_NO_ERROR
	    || hsm_open_key_store_service(sess, &kargs, &ks) != HSM_NO_ERROR
	    || hsm_open_key_management_service(ks, &margs, &km) != HSM_NO_ERROR
	    || hsm_export_root_key_encryption_key(sess, &rargs) != HSM_NO_ERROR
	    || hsm_open_cipher_service(ks, &cargs, &cipherSvc) != HSM_NO_ERROR
	    || hsm_open_mac_service(ks, &macArgs, &macSvc) != HSM_NO_ERROR
	    || hsm_open_signature_generation_service(ks, &gargs, &signSvc)
		    != HSM_NO_ERROR
	    || hsm_open_signature_verification_service(sess, &vargs, &verSvc)
		    != HSM_NO_ERROR
	    || hsm_open_hash_service(sess, &hargs, &hashSvc) != HSM_NO_ERROR
	    || hsm_open_rng_service(sess, &nargs, &rngSvc) != HSM_NO_ERROR) {
	fprintf(stderr, "set-up failed: %s\n", hsm_spps_last_error());
	exit(2);
    }
}

static void
Teardown(void)
{
    CHECK_EQ(hsm_close_session(sess), HSM_NO_ERROR);
    nftw(stateDir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * ImportKey --
 *	Imports key bytes (AES key or EC private scalar) of a type, wrapped
 *	under the root KEK; returns the new key id (0 on failure).
 */
static uint32_t
ImportKey(hsm_key_type_t type, const uint8_t *key, size_t len)
{
    uint8_t blob[12 + 64 + 16];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    op_manage_key_args_t args;
    uint32_t id = 0;
    int n, fin;
    hsm_err_t err;

    RAND_bytes(blob, 12);
    if (len > 64 || EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), rootKek, blob,
	    NULL) != 1
	    || EVP_EncryptUpdate(ctx, blob + 12, &n, key, (int) len) != 1
	    || EVP_EncryptFinal_ex(ctx, blob + 12 + n, &fin) != 1
	    || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
		    blob + 12 + len) != 1) {
	EVP_CIPHER_CTX_free(ctx);
	return 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    memset(&args, 0, sizeof(args));
    args.key_identifier = &id;
    args.kek_identifier = 0;
    args.input_size = (uint16_t) (12 + len + 16);
    args.flags = HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK;
    args.key_type = type;
    args.key_group = 1;
    args.key_info = 0;
    args.input_data = blob;
    err = hsm_manage_key(km, &args);
    if (err != HSM_NO_ERROR) {
	fprintf(stderr, "import of a key of type 0x%02x failed: %s\n", type,
		hsm_spps_last_error());
	return 0;
    }
    return id;
}

static hsm_key_type_t
AesType(size_t len)
{
    return len == 16 ? HSM_KEY_TYPE_AES_128 : len == 24 ? HSM_KEY_TYPE_AES_192
	    : HSM_KEY_TYPE_AES_256;
}

/* Generates a key; for EC keys pub (2 * size bytes) gets the public key. */
static uint32_t
GenerateKey(hsm_key_type_t type, uint8_t *pub, uint16_t pubLen)
{
    op_generate_key_args_t args;
    uint32_t id = 0;
    uint8_t scratch[96];

    /* EC keys always return their public key. */
    if (pub == NULL && type < HSM_KEY_TYPE_AES_128) {
	pub = scratch;
	pubLen = (type == HSM_KEY_TYPE_ECDSA_NIST_P256
		|| type == HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256) ? 64 : 96;
    }
    memset(&args, 0, sizeof(args));
    args.key_identifier = &id;
    args.out_size = pubLen;
    args.flags = HSM_OP_KEY_GENERATION_FLAGS_CREATE;
    args.key_type = type;
    args.key_group = 2;
    args.key_info = 0;
    args.out_key = pub;
    if (hsm_generate_key(km, &args) != HSM_NO_ERROR) {
	fprintf(stderr, "generate_key 0x%02x failed: %s\n", type,
		hsm_spps_last_error());
	return 0;
    }
    return id;
}

/* Last error detail mentions a word (the field at fault). */
#define CHECK_DETAIL(word)						\
    do {								\
	if (strstr(hsm_spps_last_error(), (word)) == NULL) {		\
	    unitChecksFailed++;						\
	    fprintf(stderr, "%s:%d: %s: detail \"%s\" lacks \"%s\"\n",	\
		    __FILE__, __LINE__, unitCurrent,			\
		    hsm_spps_last_error(), (word));			\
	}								\
    } while (0)

/* ------------------------------------------------------------------ */
/* Cipher known answers                                                 */
/* ------------------------------------------------------------------ */

static hsm_err_t
CipherOneGo(uint32_t key, hsm_op_cipher_one_go_algo_t algo, int enc,
	const uint8_t *iv, uint16_t ivLen, const uint8_t *in, uint32_t inLen,
	uint8_t *out, uint32_t outLen)
{
    op_cipher_one_go_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = key;
    a.iv = (uint8_t *) iv;
    a.iv_size = ivLen;
    a.cipher_algo = algo;
    a.flags = enc ? HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT
	    : HSM_CIPHER_ONE_GO_FLAGS_DECRYPT;
    a.input = (uint8_t *) in;
    a.input_size = inLen;
    a.output = out;
    a.output_size = outLen;
    return hsm_cipher_one_go(cipherSvc, &a);
}

static void
TestAesEcbCbcVectors(void)
{
    static const char *const files[] = {"aes_ecb.txt", "aes_cbc.txt"};
    int f, i, count;

    for (f = 0; f < 2; f++) {
	Vector *v;
	hsm_op_cipher_one_go_algo_t algo = f ? HSM_CIPHER_ONE_GO_ALGO_AES_CBC
		: HSM_CIPHER_ONE_GO_ALGO_AES_ECB;

	count = LoadVectors(files[f], &v);
	CHECK(count >= 4);
	for (i = 0; i < count; i++) {
	    size_t kl, ivl = 0, pl, cl;
	    const uint8_t *k = Field(&v[i], "key", &kl);
	    const uint8_t *iv = f ? Field(&v[i], "iv", &ivl) : NULL;
	    const uint8_t *pt = Field(&v[i], "pt", &pl);
	    const uint8_t *ct = Field(&v[i], "ct", &cl);
	    uint8_t out[256];
	    uint32_t id = ImportKey(AesType(kl), k, kl);

	    CHECK(id != 0);
	    CHECK_EQ(CipherOneGo(id, algo, 1, iv, (uint16_t) ivl, pt,
		    (uint32_t) pl, out, (uint32_t) pl), HSM_NO_ERROR);
	    if (memcmp(out, ct, cl) != 0) {
		fprintf(stderr, "%s %s: encryption differs\n", files[f],
			v[i].name);
		unitChecksFailed++;
	    }
	    CHECK_EQ(CipherOneGo(id, algo, 0, iv, (uint16_t) ivl, ct,
		    (uint32_t) cl, out, (uint32_t) cl), HSM_NO_ERROR);
	    if (memcmp(out, pt, pl) != 0) {
		fprintf(stderr, "%s %s: decryption differs\n", files[f],
			v[i].name);
		unitChecksFailed++;
	    }
	}
	FreeVectors(v, count);
    }
}

static void
TestAesCcmVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("aes_ccm.txt", &v);

    CHECK(count >= 8);
    for (i = 0; i < count; i++) {
	size_t kl, nl, pl, cl, tl;
	const uint8_t *k = Field(&v[i], "key", &kl);
	const uint8_t *nonce = Field(&v[i], "nonce", &nl);
	const uint8_t *pt = Field(&v[i], "pt", &pl);
	const uint8_t *ct = Field(&v[i], "ct", &cl);
	const uint8_t *tag = Field(&v[i], "tag", &tl);
	uint8_t in[256], out[256];
	uint32_t id = ImportKey(AesType(kl), k, kl);
	hsm_err_t err;

	CHECK(id != 0);
	memcpy(in, ct, cl);
	memcpy(in + cl, tag, tl);
	memset(out, 0xEE, sizeof(out));
	err = CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, nonce,
		(uint16_t) nl, in, (uint32_t) (cl + tl), out, (uint32_t) cl);
	if (v[i].expectOk) {
	    if (err != HSM_NO_ERROR || memcmp(out, pt, pl) != 0) {
		fprintf(stderr, "aes_ccm %s: decryption failed (%s)\n",
			v[i].name, hsm_spps_last_error());
		unitChecksFailed++;
	    }
	    err = CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 1, nonce,
		    (uint16_t) nl, pt, (uint32_t) pl, out, (uint32_t) (pl + 16));
	    if (err != HSM_NO_ERROR || memcmp(out, in, cl + tl) != 0) {
		fprintf(stderr, "aes_ccm %s: encryption differs\n", v[i].name);
		unitChecksFailed++;
	    }
	} else {
	    size_t j;
	    int untouched = 1;

	    CHECK_EQ(err, HSM_GENERAL_ERROR);
	    for (j = 0; j < sizeof(out); j++) {
		untouched &= out[j] == 0xEE;
	    }
	    if (!untouched) {
		fprintf(stderr, "aes_ccm %s: output written on failure\n",
			v[i].name);
		unitChecksFailed++;
	    }
	}
    }
    FreeVectors(v, count);
}

static hsm_err_t
AuthEnc(uint32_t key, int enc, const uint8_t *iv, uint16_t ivLen,
	const uint8_t *aad, uint16_t aadLen, const uint8_t *in, uint32_t inLen,
	uint8_t *out, uint32_t outLen)
{
    op_auth_enc_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = key;
    a.iv = (uint8_t *) iv;
    a.iv_size = ivLen;
    a.aad = (uint8_t *) aad;
    a.aad_size = aadLen;
    a.ae_algo = HSM_AUTH_ENC_ALGO_AES_GCM;
    a.flags = enc ? HSM_AUTH_ENC_FLAGS_ENCRYPT : HSM_AUTH_ENC_FLAGS_DECRYPT;
    a.input = (uint8_t *) in;
    a.input_size = inLen;
    a.output = out;
    a.output_size = outLen;
    return hsm_auth_enc(cipherSvc, &a);
}

static void
TestAesGcmVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("aes_gcm.txt", &v);

    CHECK(count >= 12);
    for (i = 0; i < count; i++) {
	size_t kl, ivl, al, pl, cl, tl;
	const uint8_t *k = Field(&v[i], "key", &kl);
	const uint8_t *iv = Field(&v[i], "iv", &ivl);
	const uint8_t *aad = Field(&v[i], "aad", &al);
	const uint8_t *pt = Field(&v[i], "pt", &pl);
	const uint8_t *ct = Field(&v[i], "ct", &cl);
	const uint8_t *tag = Field(&v[i], "tag", &tl);
	uint8_t in[256], out[256];
	uint32_t id = ImportKey(AesType(kl), k, kl);
	hsm_err_t err;

	CHECK(id != 0);
	memcpy(in, ct, cl);
	memcpy(in + cl, tag, tl);
	memset(out, 0xEE, sizeof(out));
	err = AuthEnc(id, 0, iv, (uint16_t) ivl, al ? aad : NULL,
		(uint16_t) al, in, (uint32_t) (cl + tl), out, (uint32_t) cl);
	if (v[i].expectOk) {
	    if (err != HSM_NO_ERROR || memcmp(out, pt, pl) != 0) {
		fprintf(stderr, "aes_gcm %s: decryption failed (%s)\n",
			v[i].name, hsm_spps_last_error());
		unitChecksFailed++;
	    }
	    err = AuthEnc(id, 1, iv, (uint16_t) ivl, al ? aad : NULL,
		    (uint16_t) al, pt, (uint32_t) pl, out, (uint32_t) (pl + 16));
	    if (err != HSM_NO_ERROR || memcmp(out, in, cl + tl) != 0) {
		fprintf(stderr, "aes_gcm %s: encryption differs\n", v[i].name);
		unitChecksFailed++;
	    }
	} else {
	    size_t j;
	    int untouched = 1;

	    CHECK_EQ(err, HSM_GENERAL_ERROR);
	    CHECK_DETAIL("tag mismatch");
	    for (j = 0; j < sizeof(out); j++) {
		untouched &= out[j] == 0xEE;
	    }
	    if (!untouched) {
		fprintf(stderr, "aes_gcm %s: output written on failure\n",
			v[i].name);
		unitChecksFailed++;
	    }
	}
    }
    FreeVectors(v, count);
}

/* ------------------------------------------------------------------ */
/* Cipher round trips and errors                                        */
/* ------------------------------------------------------------------ */

static void
TestCipherRoundTrips(void)
{
    static const hsm_key_type_t types[] = {HSM_KEY_TYPE_AES_128,
	    HSM_KEY_TYPE_AES_192, HSM_KEY_TYPE_AES_256};
    uint8_t iv[16], buf[5000], ct[5000 + 16], back[5000], inplace[5000 + 16];
    int t;

    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(buf, sizeof(buf));
    for (t = 0; t < 3; t++) {
	uint32_t id = GenerateKey(types[t], NULL, 0);

	CHECK(id != 0);
	/* Larger than the service's scratch buffer: the heap path. */
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, iv, 16, buf,
		4096, ct, 4096), HSM_NO_ERROR);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 0, iv, 16, ct,
		4096, back, 4096), HSM_NO_ERROR);
	CHECK_MEM(back, buf, 4096);
	/* In place: input and output the same buffer. */
	memcpy(inplace, buf, 64);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0,
		inplace, 64, inplace, 64), HSM_NO_ERROR);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 0, NULL, 0,
		inplace, 64, inplace, 64), HSM_NO_ERROR);
	CHECK_MEM(inplace, buf, 64);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 1, iv, 12, buf,
		4999, ct, 4999 + 16), HSM_NO_ERROR);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, iv, 12, ct,
		4999 + 16, back, 4999), HSM_NO_ERROR);
	CHECK_MEM(back, buf, 4999);
	CHECK_EQ(AuthEnc(id, 1, iv, 12, buf + 100, 77, buf, 5000, ct, 5016),
		HSM_NO_ERROR);
	CHECK_EQ(AuthEnc(id, 0, iv, 12, buf + 100, 77, ct, 5016, back, 5000),
		HSM_NO_ERROR);
	CHECK_MEM(back, buf, 5000);
	/* A long message with a flipped byte: refused, nothing released. */
	ct[2500] ^= 1;
	memset(back, 0, sizeof(back));
	CHECK_EQ(AuthEnc(id, 0, iv, 12, buf + 100, 77, ct, 5016, back, 5000),
		HSM_GENERAL_ERROR);
	CHECK(back[0] == 0 && back[2500] == 0 && back[4999] == 0);
	/* An empty CCM payload: only the tag. */
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 1, iv, 12, buf,
		0, ct, 16), HSM_NO_ERROR);
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, iv, 12, ct,
		16, back, 0), HSM_NO_ERROR);
	ct[3] ^= 0x40;
	CHECK_EQ(CipherOneGo(id, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, iv, 12, ct,
		16, back, 0), HSM_GENERAL_ERROR);
    }
}

static void
TestCipherErrors(void)
{
    uint8_t key[32] = {1, 2, 3}, iv[16] = {0}, in[64] = {0}, out[96];
    uint8_t pub[96];
    uint32_t aes = ImportKey(HSM_KEY_TYPE_AES_256, key, 32);
    uint32_t ec = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64);
    op_cipher_one_go_args_t a;

    CHECK(aes != 0 && ec != 0);
    /* Sizes and IVs, each naming the field. */
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0, in,
	    20, out, 20), HSM_INVALID_PARAM);
    CHECK_DETAIL("input_size");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0, in,
	    0, out, 0), HSM_INVALID_PARAM);
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, iv, 16, in,
	    16, out, 16), HSM_INVALID_PARAM);
    CHECK_DETAIL("iv_size");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, iv, 12, in,
	    16, out, 16), HSM_INVALID_PARAM);
    CHECK_DETAIL("iv_size is 12, must be 16");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, iv, 16, in,
	    32, out, 48), HSM_INVALID_PARAM);
    CHECK_DETAIL("output_size is 48, must be 32");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 1, iv, 16, in,
	    16, out, 32), HSM_INVALID_PARAM);
    CHECK_DETAIL("nonce");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 1, iv, 12, in,
	    16, out, 16), HSM_INVALID_PARAM);
    CHECK_DETAIL("output_size is 16, must be 32");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, iv, 12, in,
	    15, out, 0), HSM_INVALID_PARAM);
    CHECK_DETAIL("at least 16");
    CHECK_EQ(CipherOneGo(aes, 0x02, 1, iv, 16, in, 16, out, 16),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("cipher_algo");
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, NULL, 16, in,
	    16, out, 16), HSM_INVALID_ADDRESS);
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, iv, 16, NULL,
	    16, out, 16), HSM_INVALID_ADDRESS);
    CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 1, iv, 16, in,
	    16, NULL, 16), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_cipher_one_go(cipherSvc, NULL), HSM_INVALID_ADDRESS);
    memset(&a, 0, sizeof(a));
    a.key_identifier = aes;
    a.flags = 0x81;
    a.input = in;
    a.output = out;
    a.input_size = a.output_size = 16;
    CHECK_EQ(hsm_cipher_one_go(cipherSvc, &a), HSM_INVALID_PARAM);
    CHECK_DETAIL("flags");
    /* Keys: unknown, wrong kind. */
    CHECK(CipherOneGo(0xDEAD, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0, in,
	    16, out, 16) == HSM_UNKNOWN_ID);
    CHECK(CipherOneGo(ec, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0, in, 16,
	    out, 16) != HSM_NO_ERROR);
    /* The wrong handle kind and a closed handle. */
    {
	op_cipher_one_go_args_t b = a;

	b.flags = HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT;
	b.cipher_algo = HSM_CIPHER_ONE_GO_ALGO_AES_ECB;
	CHECK_EQ(hsm_cipher_one_go(macSvc, &b), HSM_UNKNOWN_HANDLE);
	CHECK_EQ(hsm_cipher_one_go(0xFFFFFFF0u, &b), HSM_UNKNOWN_HANDLE);
    }
    /* GCM */
    CHECK_EQ(AuthEnc(aes, 1, iv, 16, NULL, 0, in, 16, out, 32),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("iv_size is 16, must be 12");
    CHECK_EQ(AuthEnc(aes, 1, iv, 12, NULL, 0, in, 16, out, 16),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("output_size is 16, must be 32");
    CHECK_EQ(AuthEnc(aes, 0, iv, 12, NULL, 0, in, 10, out, 0),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("at least 16");
    CHECK_EQ(AuthEnc(aes, 1, iv, 12, NULL, 5, in, 16, out, 32),
	    HSM_INVALID_ADDRESS);
    CHECK_DETAIL("aad");
    CHECK_EQ(AuthEnc(aes, 1, NULL, 12, NULL, 0, in, 16, out, 32),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_auth_enc(cipherSvc, NULL), HSM_INVALID_ADDRESS);
    {
	op_auth_enc_args_t g;

	memset(&g, 0, sizeof(g));
	g.key_identifier = aes;
	g.iv = iv;
	g.iv_size = 12;
	g.ae_algo = 1;
	g.input = in;
	g.output = out;
	g.input_size = 16;
	g.output_size = 32;
	g.flags = HSM_AUTH_ENC_FLAGS_ENCRYPT;
	CHECK_EQ(hsm_auth_enc(cipherSvc, &g), HSM_INVALID_PARAM);
	CHECK_DETAIL("ae_algo");
	g.ae_algo = HSM_AUTH_ENC_ALGO_AES_GCM;
	g.flags = 0x10;
	CHECK_EQ(hsm_auth_enc(cipherSvc, &g), HSM_INVALID_PARAM);
	CHECK_DETAIL("flags");
    }
    /* Opening. */
    {
	open_svc_cipher_args_t ca = {0, {0}};
	hsm_hdl_t h;

	CHECK_EQ(hsm_open_cipher_service(ks, NULL, &h), HSM_INVALID_ADDRESS);
	CHECK_EQ(hsm_open_cipher_service(ks, &ca, NULL), HSM_INVALID_ADDRESS);
	CHECK(hsm_open_cipher_service(sess, &ca, &h) != HSM_NO_ERROR);
	CHECK_EQ(hsm_open_cipher_service(ks, &ca, &h), HSM_NO_ERROR);
	CHECK_EQ(hsm_close_cipher_service(h), HSM_NO_ERROR);
	CHECK_EQ(CipherOneGo(aes, HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 1, NULL, 0,
		in, 16, out, 16), HSM_NO_ERROR);
	{
	    op_cipher_one_go_args_t b;

	    memset(&b, 0, sizeof(b));
	    b.key_identifier = aes;
	    b.flags = HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT;
	    b.input = in;
	    b.output = out;
	    b.input_size = b.output_size = 16;
	    CHECK_EQ(hsm_cipher_one_go(h, &b), HSM_UNKNOWN_HANDLE);
	}
	CHECK(hsm_close_cipher_service(h) != HSM_NO_ERROR);
    }
}

/* ------------------------------------------------------------------ */
/* ECIES                                                                */
/* ------------------------------------------------------------------ */

static hsm_err_t
EciesDecrypt(uint32_t key, hsm_key_type_t type, const uint8_t *vct,
	const uint8_t *p1, uint8_t *out)
{
    op_ecies_dec_args_t d;

    memset(&d, 0, sizeof(d));
    d.key_identifier = key;
    d.input = (uint8_t *) vct;
    d.p1 = (uint8_t *) p1;
    d.p2 = NULL;
    d.output = out;
    d.input_size = 96;
    d.output_size = 16;
    d.p1_size = 32;
    d.p2_size = 0;
    d.mac_size = 16;
    d.key_type = type;
    return hsm_ecies_decryption(cipherSvc, &d);
}

static hsm_err_t
EciesEncrypt(hsm_key_type_t type, const uint8_t *pub, const uint8_t *msg,
	const uint8_t *p1, uint8_t *out)
{
    op_ecies_enc_args_t e;

    memset(&e, 0, sizeof(e));
    e.input = (uint8_t *) msg;
    e.pub_key = (uint8_t *) pub;
    e.p1 = (uint8_t *) p1;
    e.output = out;
    e.input_size = 16;
    e.p1_size = 32;
    e.p2_size = 0;
    e.pub_key_size = 64;
    e.mac_size = 16;
    e.out_size = 96;
    e.key_type = type;
    return hsm_ecies_encryption(sess, &e);
}

static void
TestEciesVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("ecies.txt", &v);

    CHECK(count >= 4);
    for (i = 0; i < count; i++) {
	size_t dl, l;
	const uint8_t *d = Field(&v[i], "d", &dl);
	uint8_t vct[96], out[16], p1[32];
	uint32_t id = ImportKey(HSM_KEY_TYPE_ECDSA_NIST_P256, d, dl);
	hsm_err_t err;

	CHECK(id != 0);
	memcpy(vct, Field(&v[i], "vx", &l), 32);
	memcpy(vct + 32, Field(&v[i], "vy", &l), 32);
	memcpy(vct + 64, Field(&v[i], "c", &l), 16);
	memcpy(vct + 80, Field(&v[i], "t", &l), 16);
	memcpy(p1, Field(&v[i], "p1", &l), 32);
	memset(out, 0xEE, sizeof(out));
	err = EciesDecrypt(id, HSM_KEY_TYPE_ECDSA_NIST_P256, vct, p1, out);
	if (v[i].expectOk) {
	    if (err != HSM_NO_ERROR
		    || memcmp(out, Field(&v[i], "pt", &l), 16) != 0) {
		fprintf(stderr, "ecies %s: decryption failed (%s)\n", v[i].name,
			hsm_spps_last_error());
		unitChecksFailed++;
	    }
	} else {
	    CHECK_EQ(err, HSM_GENERAL_ERROR);
	    CHECK_DETAIL("tag mismatch");
	    CHECK(out[0] == 0xEE && out[15] == 0xEE);
	}
    }
    FreeVectors(v, count);
}

static void
TestEciesRoundTrip(void)
{
    static const hsm_key_type_t types[] = {HSM_KEY_TYPE_ECDSA_NIST_P256,
	    HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256};
    uint8_t pub[64], msg[16], p1[32], vct[96], vct2[96], out[16];
    int t;

    RAND_bytes(msg, sizeof(msg));
    RAND_bytes(p1, sizeof(p1));
    for (t = 0; t < 2; t++) {
	uint32_t id = GenerateKey(types[t], pub, 64);

	CHECK(id != 0);
	CHECK_EQ(EciesEncrypt(types[t], pub, msg, p1, vct), HSM_NO_ERROR);
	CHECK_EQ(EciesEncrypt(types[t], pub, msg, p1, vct2), HSM_NO_ERROR);
	CHECK(memcmp(vct, vct2, 96) != 0);	/* fresh ephemeral key */
	CHECK_EQ(EciesDecrypt(id, types[t], vct, p1, out), HSM_NO_ERROR);
	CHECK_MEM(out, msg, 16);
	CHECK_EQ(EciesDecrypt(id, types[t], vct2, p1, out), HSM_NO_ERROR);
	CHECK_MEM(out, msg, 16);
	/* Another P1 gives other keys: the tag fails. */
	p1[0] ^= 1;
	CHECK_EQ(EciesDecrypt(id, types[t], vct, p1, out), HSM_GENERAL_ERROR);
	p1[0] ^= 1;
	/* V off the curve. */
	vct[63] ^= 1;
	CHECK_EQ(EciesDecrypt(id, types[t], vct, p1, out), HSM_INVALID_PARAM);
	CHECK_DETAIL("V (input bytes 0..63)");
	vct[63] ^= 1;
    }
}

static void
TestEciesErrors(void)
{
    uint8_t pub[64], bad[64], msg[16] = {0}, p1[32] = {0}, vct[96], out[16];
    uint32_t id = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64);
    uint32_t p384 = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P384, NULL, 0);
    uint8_t aesKey[16] = {0};
    uint32_t aes = ImportKey(HSM_KEY_TYPE_AES_128, aesKey, 16);
    op_ecies_enc_args_t e;
    op_ecies_dec_args_t d;

    CHECK(id != 0 && p384 != 0 && aes != 0);
    CHECK_EQ(EciesEncrypt(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, msg, p1, vct),
	    HSM_NO_ERROR);
    /* Key types. */
    CHECK_EQ(EciesEncrypt(HSM_KEY_TYPE_ECDSA_NIST_P384, pub, msg, p1, vct),
	    HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(EciesEncrypt(HSM_KEY_TYPE_AES_128, pub, msg, p1, vct),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("key_type");
    CHECK_EQ(EciesDecrypt(id, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, vct, p1,
	    out), HSM_INVALID_PARAM);
    CHECK_DETAIL("key_type");
    CHECK(EciesDecrypt(aes, HSM_KEY_TYPE_ECDSA_NIST_P256, vct, p1, out)
	    != HSM_NO_ERROR);
    CHECK_EQ(EciesDecrypt(0xBEEF, HSM_KEY_TYPE_ECDSA_NIST_P256, vct, p1, out),
	    HSM_UNKNOWN_ID);
    /* A public key off the curve. */
    memcpy(bad, pub, 64);
    bad[10] ^= 0x55;
    CHECK_EQ(EciesEncrypt(HSM_KEY_TYPE_ECDSA_NIST_P256, bad, msg, p1, vct),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("pub_key");
    /* Sizes. */
    memset(&e, 0, sizeof(e));
    e.input = msg;
    e.pub_key = pub;
    e.p1 = p1;
    e.output = vct;
    e.input_size = 16;
    e.p1_size = 32;
    e.pub_key_size = 64;
    e.mac_size = 16;
    e.out_size = 96;
    e.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    e.input_size = 32;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("input_size is 32, must be 16");
    e.input_size = 16;
    e.p1_size = 16;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("p1_size");
    e.p1_size = 32;
    e.p2_size = 4;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("p2_size");
    e.p2_size = 0;
    e.mac_size = 32;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("mac_size");
    e.mac_size = 16;
    e.out_size = 97;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("out_size");
    e.out_size = 96;
    e.pub_key_size = 65;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    CHECK_DETAIL("pub_key_size");
    e.pub_key_size = 64;
    e.flags = 1;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_PARAM);
    e.flags = 0;
    e.p1 = NULL;
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_INVALID_ADDRESS);
    CHECK_DETAIL("p1");
    e.p1 = p1;
    CHECK_EQ(hsm_ecies_encryption(sess, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_ecies_encryption(cipherSvc, &e), HSM_UNKNOWN_HANDLE);
    CHECK_EQ(hsm_ecies_encryption(sess, &e), HSM_NO_ERROR);

    memset(&d, 0, sizeof(d));
    d.key_identifier = id;
    d.input = vct;
    d.p1 = p1;
    d.output = out;
    d.input_size = 95;
    d.output_size = 16;
    d.p1_size = 32;
    d.mac_size = 16;
    d.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    CHECK_EQ(hsm_ecies_decryption(cipherSvc, &d), HSM_INVALID_PARAM);
    CHECK_DETAIL("input_size is 95, must be 96");
    d.input_size = 96;
    d.output_size = 17;
    CHECK_EQ(hsm_ecies_decryption(cipherSvc, &d), HSM_INVALID_PARAM);
    CHECK_DETAIL("output_size");
    d.output_size = 16;
    d.output = NULL;
    CHECK_EQ(hsm_ecies_decryption(cipherSvc, &d), HSM_INVALID_ADDRESS);
    d.output = out;
    CHECK_EQ(hsm_ecies_decryption(cipherSvc, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_ecies_decryption(sess, &d), HSM_UNKNOWN_HANDLE);
    CHECK_EQ(hsm_ecies_decryption(cipherSvc, &d), HSM_NO_ERROR);
    CHECK_MEM(out, msg, 16);
}

/* ------------------------------------------------------------------ */
/* Hash, MAC, RNG                                                       */
/* ------------------------------------------------------------------ */

static hsm_err_t
Hash(hsm_hash_algo_t algo, const uint8_t *in, uint32_t inLen, uint8_t *out,
	uint32_t outLen)
{
    op_hash_one_go_args_t h;

    memset(&h, 0, sizeof(h));
    h.input = (uint8_t *) in;
    h.input_size = inLen;
    h.output = out;
    h.output_size = outLen;
    h.algo = algo;
    return hsm_hash_one_go(hashSvc, &h);
}

static int
HashAlgo(const char *name, hsm_hash_algo_t *algo, uint32_t *size)
{
    static const char *const names[] = {"sha224", "sha256", "sha384", "sha512"};
    static const uint32_t sizes[] = {28, 32, 48, 64};
    int i;

    for (i = 0; i < 4; i++) {
	if (strcmp(name, names[i]) == 0) {
	    *algo = (hsm_hash_algo_t) i;
	    *size = sizes[i];
	    return 0;
	}
    }
    return -1;
}

static void
TestHashVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("sha2.txt", &v);
    uint8_t out[64];

    CHECK(count >= 8);
    for (i = 0; i < count; i++) {
	size_t ml, dl;
	const uint8_t *msg = Field(&v[i], "msg", &ml);
	const uint8_t *dig = Field(&v[i], "digest", &dl);
	hsm_hash_algo_t algo = 0;
	uint32_t size = 0;

	CHECK(HashAlgo(Text(&v[i], "algo"), &algo, &size) == 0);
	CHECK_EQ(size, dl);
	CHECK_EQ(Hash(algo, ml ? msg : NULL, (uint32_t) ml, out, size),
		HSM_NO_ERROR);
	if (memcmp(out, dig, dl) != 0) {
	    fprintf(stderr, "sha2 %s: digest differs\n", v[i].name);
	    unitChecksFailed++;
	}
    }
    FreeVectors(v, count);
    /* Errors. */
    CHECK_EQ(Hash(HSM_HASH_ALGO_SHA_256, out, 3, out, 48), HSM_INVALID_PARAM);
    CHECK_DETAIL("output_size is 48, must be 32");
    CHECK_EQ(Hash(4, out, 3, out, 32), HSM_INVALID_PARAM);
    CHECK_DETAIL("algo");
    CHECK_EQ(Hash(HSM_HASH_ALGO_SHA_256, NULL, 3, out, 32),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(Hash(HSM_HASH_ALGO_SHA_256, out, 3, NULL, 32),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_hash_one_go(hashSvc, NULL), HSM_INVALID_ADDRESS);
    {
	op_hash_one_go_args_t h;
	open_svc_hash_args_t ha = {0, {0}};
	hsm_hdl_t h2;

	memset(&h, 0, sizeof(h));
	h.output = out;
	h.output_size = 32;
	h.algo = HSM_HASH_ALGO_SHA_256;
	h.flags = 1;
	CHECK_EQ(hsm_hash_one_go(hashSvc, &h), HSM_INVALID_PARAM);
	CHECK_DETAIL("flags");
	h.flags = 0;
	CHECK_EQ(hsm_hash_one_go(rngSvc, &h), HSM_UNKNOWN_HANDLE);
	CHECK_EQ(hsm_open_hash_service(sess, NULL, &h2), HSM_INVALID_ADDRESS);
	CHECK(hsm_open_hash_service(ks, &ha, &h2) != HSM_NO_ERROR);
	CHECK_EQ(hsm_open_hash_service(sess, &ha, &h2), HSM_NO_ERROR);
	CHECK_EQ(hsm_hash_one_go(h2, &h), HSM_NO_ERROR);
	CHECK_EQ(hsm_close_hash_service(h2), HSM_NO_ERROR);
	CHECK_EQ(hsm_hash_one_go(h2, &h), HSM_UNKNOWN_HANDLE);
    }
}

static hsm_err_t
Mac(uint32_t key, int generate, const uint8_t *payload, uint16_t len,
	uint8_t *mac, uint16_t macLen, hsm_mac_verification_status_t *status)
{
    op_mac_one_go_args_t m;

    memset(&m, 0, sizeof(m));
    m.key_identifier = key;
    m.algorithm = HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC;
    m.flags = generate ? HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION
	    : HSM_OP_MAC_ONE_GO_FLAGS_MAC_VERIFICATION;
    m.payload = (uint8_t *) payload;
    m.payload_size = len;
    m.mac = mac;
    m.mac_size = macLen;
    return hsm_mac_one_go(macSvc, &m, status);
}

static void
TestCmacVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("cmac.txt", &v);

    CHECK(count >= 12);
    for (i = 0; i < count; i++) {
	size_t kl, ml, tl;
	const uint8_t *k = Field(&v[i], "key", &kl);
	const uint8_t *msg = Field(&v[i], "msg", &ml);
	const uint8_t *tag = Field(&v[i], "mac", &tl);
	uint8_t mac[16];
	hsm_mac_verification_status_t st = HSM_MAC_VERIFICATION_STATUS_SUCCESS;
	uint32_t id = ImportKey(AesType(kl), k, kl);

	CHECK(id != 0);
	memcpy(mac, tag, tl);
	CHECK_EQ(Mac(id, 0, ml ? msg : NULL, (uint16_t) ml, mac,
		(uint16_t) tl, &st), HSM_NO_ERROR);
	if ((st == HSM_MAC_VERIFICATION_STATUS_SUCCESS) != v[i].expectOk) {
	    fprintf(stderr, "cmac %s: verification gave 0x%x\n", v[i].name,
		    (unsigned) st);
	    unitChecksFailed++;
	}
	if (v[i].expectOk) {
	    memset(mac, 0, sizeof(mac));
	    CHECK_EQ(Mac(id, 1, ml ? msg : NULL, (uint16_t) ml, mac,
		    (uint16_t) tl, NULL), HSM_NO_ERROR);
	    if (memcmp(mac, tag, tl) != 0) {
		fprintf(stderr, "cmac %s: generated tag differs\n", v[i].name);
		unitChecksFailed++;
	    }
	}
    }
    FreeVectors(v, count);
}

static void
TestMacErrors(void)
{
    uint8_t key[16] = {9}, mac[16], payload[40] = {0};
    uint32_t id = ImportKey(HSM_KEY_TYPE_AES_128, key, 16);
    uint32_t ec = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P256, NULL, 0);
    hsm_mac_verification_status_t st;
    op_mac_one_go_args_t m;

    CHECK(id != 0 && ec != 0);
    CHECK_EQ(Mac(id, 1, payload, 40, mac, 3, NULL), HSM_INVALID_PARAM);
    CHECK_DETAIL("mac_size is 3, must be 4 to 16");
    CHECK_EQ(Mac(id, 1, payload, 40, mac, 17, NULL), HSM_INVALID_PARAM);
    CHECK_EQ(Mac(id, 1, payload, 40, NULL, 16, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(Mac(id, 1, NULL, 40, mac, 16, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(Mac(id, 0, payload, 40, mac, 16, NULL), HSM_INVALID_ADDRESS);
    CHECK_DETAIL("status");
    CHECK(Mac(ec, 1, payload, 40, mac, 16, NULL) != HSM_NO_ERROR);
    CHECK_EQ(Mac(0xC0FFEE, 1, payload, 40, mac, 16, NULL), HSM_UNKNOWN_ID);
    /* Status is failure after any refusal, success only after a match. */
    CHECK_EQ(Mac(id, 1, payload, 40, mac, 16, NULL), HSM_NO_ERROR);
    st = HSM_MAC_VERIFICATION_STATUS_SUCCESS;
    CHECK_EQ(Mac(id, 0, payload, 40, mac, 2, &st), HSM_INVALID_PARAM);
    CHECK(st != HSM_MAC_VERIFICATION_STATUS_SUCCESS);
    CHECK_EQ(Mac(id, 0, payload, 40, mac, 16, &st), HSM_NO_ERROR);
    CHECK(st == HSM_MAC_VERIFICATION_STATUS_SUCCESS);
    /* Each truncated length, and a change in the last byte checked. */
    {
	uint16_t n;

	for (n = 4; n <= 16; n++) {
	    CHECK_EQ(Mac(id, 0, payload, 40, mac, n, &st), HSM_NO_ERROR);
	    CHECK(st == HSM_MAC_VERIFICATION_STATUS_SUCCESS);
	    mac[n - 1] ^= 0x80;
	    CHECK_EQ(Mac(id, 0, payload, 40, mac, n, &st), HSM_NO_ERROR);
	    CHECK(st != HSM_MAC_VERIFICATION_STATUS_SUCCESS);
	    mac[n - 1] ^= 0x80;
	}
    }
    memset(&m, 0, sizeof(m));
    m.key_identifier = id;
    m.algorithm = 0x02;
    m.flags = HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION;
    m.mac = mac;
    m.mac_size = 16;
    CHECK_EQ(hsm_mac_one_go(macSvc, &m, NULL), HSM_INVALID_PARAM);
    CHECK_DETAIL("algorithm");
    m.algorithm = HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC;
    m.flags = 0x21;
    CHECK_EQ(hsm_mac_one_go(macSvc, &m, NULL), HSM_INVALID_PARAM);
    CHECK_DETAIL("flags");
    m.flags = HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION;
    CHECK_EQ(hsm_mac_one_go(macSvc, NULL, &st), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_mac_one_go(cipherSvc, &m, &st), HSM_UNKNOWN_HANDLE);
    {
	open_svc_mac_args_t ma = {0, {0}};
	hsm_hdl_t h;

	CHECK_EQ(hsm_open_mac_service(ks, NULL, &h), HSM_INVALID_ADDRESS);
	CHECK(hsm_open_mac_service(sess, &ma, &h) != HSM_NO_ERROR);
	CHECK_EQ(hsm_open_mac_service(ks, &ma, &h), HSM_NO_ERROR);
	CHECK_EQ(hsm_mac_one_go(h, &m, NULL), HSM_NO_ERROR);
	CHECK_EQ(hsm_close_mac_service(h), HSM_NO_ERROR);
	CHECK_EQ(hsm_mac_one_go(h, &m, NULL), HSM_UNKNOWN_HANDLE);
    }
}

static void
TestRng(void)
{
    uint8_t a[64], b[64], big[100000];
    op_get_random_args_t r;
    size_t i, zeros = 0;

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    r.output = a;
    r.random_size = sizeof(a);
    CHECK_EQ(hsm_get_random(rngSvc, &r), HSM_NO_ERROR);
    r.output = b;
    CHECK_EQ(hsm_get_random(rngSvc, &r), HSM_NO_ERROR);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    memset(big, 0, sizeof(big));
    r.output = big;
    r.random_size = sizeof(big);
    CHECK_EQ(hsm_get_random(rngSvc, &r), HSM_NO_ERROR);
    for (i = 0; i < sizeof(big); i++) {
	zeros += big[i] == 0;
    }
    CHECK(zeros < 1000);	/* about 390 expected */
    r.random_size = 0;
    CHECK_EQ(hsm_get_random(rngSvc, &r), HSM_INVALID_PARAM);
    CHECK_DETAIL("random_size");
    r.random_size = 8;
    r.output = NULL;
    CHECK_EQ(hsm_get_random(rngSvc, &r), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_get_random(rngSvc, NULL), HSM_INVALID_ADDRESS);
    r.output = a;
    CHECK_EQ(hsm_get_random(hashSvc, &r), HSM_UNKNOWN_HANDLE);
    {
	open_svc_rng_args_t ra = {0, {0}};
	hsm_hdl_t h;

	CHECK_EQ(hsm_open_rng_service(sess, NULL, &h), HSM_INVALID_ADDRESS);
	CHECK(hsm_open_rng_service(ks, &ra, &h) != HSM_NO_ERROR);
	CHECK_EQ(hsm_open_rng_service(sess, &ra, &h), HSM_NO_ERROR);
	CHECK_EQ(hsm_get_random(h, &r), HSM_NO_ERROR);
	CHECK_EQ(hsm_close_rng_service(h), HSM_NO_ERROR);
	CHECK_EQ(hsm_get_random(h, &r), HSM_UNKNOWN_HANDLE);
    }
}

/* ------------------------------------------------------------------ */
/* Signatures                                                           */
/* ------------------------------------------------------------------ */

static hsm_err_t
Sign(uint32_t key, hsm_signature_scheme_id_t scheme, uint8_t flags,
	const uint8_t *msg, uint32_t msgLen, uint8_t *sig, uint16_t sigLen)
{
    op_generate_sign_args_t s;

    memset(&s, 0, sizeof(s));
    s.key_identifier = key;
    s.message = (uint8_t *) msg;
    s.message_size = msgLen;
    s.signature = sig;
    s.signature_size = sigLen;
    s.scheme_id = scheme;
    s.flags = flags;
    return hsm_generate_signature(signSvc, &s);
}

static hsm_err_t
Verify(const uint8_t *key, uint16_t keyLen, hsm_signature_scheme_id_t scheme,
	uint8_t flags, const uint8_t *msg, uint32_t msgLen, const uint8_t *sig,
	uint16_t sigLen, hsm_verification_status_t *status)
{
    op_verify_sign_args_t a;

    memset(&a, 0, sizeof(a));
    a.key = (uint8_t *) key;
    a.key_size = keyLen;
    a.message = (uint8_t *) msg;
    a.message_size = msgLen;
    a.signature = (uint8_t *) sig;
    a.signature_size = sigLen;
    a.scheme_id = scheme;
    a.flags = flags;
    return hsm_verify_signature(verSvc, &a, status);
}

static hsm_err_t
ImportPublic(hsm_key_type_t type, const uint8_t *xy, uint16_t len,
	uint32_t *ref)
{
    op_import_public_key_args_t a;

    memset(&a, 0, sizeof(a));
    a.key = (uint8_t *) xy;
    a.key_size = len;
    a.key_type = type;
    return hsm_import_public_key(verSvc, &a, ref);
}

static void
TestEcdsaVerifyVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("ecdsa_verify.txt", &v);

    CHECK(count >= 8);
    for (i = 0; i < count; i++) {
	int p384 = strcmp(Text(&v[i], "curve"), "p384") == 0;
	int bp = strcmp(Text(&v[i], "curve"), "bp256r1") == 0;
	size_t c = p384 ? 48 : 32, l, ml;
	hsm_key_type_t type = p384 ? HSM_KEY_TYPE_ECDSA_NIST_P384
		: bp ? HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256
		: HSM_KEY_TYPE_ECDSA_NIST_P256;
	/* The seed numbers each scheme like its key type. */
	hsm_signature_scheme_id_t scheme = (hsm_signature_scheme_id_t) type;
	const uint8_t *msg = Field(&v[i], "msg", &ml);
	uint8_t key[96], sig[97], dig[48];
	hsm_verification_status_t st;
	uint32_t ref = 0;
	int ok;

	CHECK(strcmp(Text(&v[i], "digest"), p384 ? "sha384" : "sha256") == 0);
	memcpy(key, Field(&v[i], "x", &l), c);
	memcpy(key + c, Field(&v[i], "y", &l), c);
	memcpy(sig, Field(&v[i], "r", &l), c);
	memcpy(sig + c, Field(&v[i], "s", &l), c);
	sig[2 * c] = 0;
	/* The message, with the key given directly. */
	st = HSM_VERIFICATION_STATUS_SUCCESS;
	CHECK_EQ(Verify(key, (uint16_t) (2 * c), scheme,
		HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE, msg, (uint32_t) ml,
		sig, (uint16_t) (2 * c + 1), &st), HSM_NO_ERROR);
	ok = st == HSM_VERIFICATION_STATUS_SUCCESS;
	/* The digest (the engine's hash), with an imported key. */
	CHECK_EQ(Hash(p384 ? HSM_HASH_ALGO_SHA_384 : HSM_HASH_ALGO_SHA_256,
		msg, (uint32_t) ml, dig, (uint32_t) c), HSM_NO_ERROR);
	CHECK_EQ(ImportPublic(type, key, (uint16_t) (2 * c), &ref),
		HSM_NO_ERROR);
	st = HSM_VERIFICATION_STATUS_SUCCESS;
	CHECK_EQ(Verify((uint8_t *) &ref, 4, scheme,
		HSM_OP_VERIFY_SIGN_FLAGS_INPUT_DIGEST
		| HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, dig, (uint32_t) c, sig,
		(uint16_t) (2 * c + 1), &st), HSM_NO_ERROR);
	if (ok != v[i].expectOk
		|| (st == HSM_VERIFICATION_STATUS_SUCCESS) != v[i].expectOk) {
	    fprintf(stderr, "ecdsa_verify %s: got %d/%d, expected %s\n",
		    v[i].name, ok, st == HSM_VERIFICATION_STATUS_SUCCESS,
		    v[i].expectOk ? "ok" : "fail");
	    unitChecksFailed++;
	}
    }
    FreeVectors(v, count);
}

/*
 * TestKeyVectors --
 *	Known key pairs: imported private keys recover their published
 *	public keys; the compressed form decompresses to the published y;
 *	a signature by the imported key verifies under the published key.
 */
static void
TestKeyVectors(void)
{
    Vector *v;
    int i, count = LoadVectors("ec_keys.txt", &v);

    CHECK(count >= 3);
    for (i = 0; i < count; i++) {
	int p384 = strcmp(Text(&v[i], "curve"), "p384") == 0;
	size_t c = p384 ? 48 : 32, dl, l;
	hsm_key_type_t type = p384 ? HSM_KEY_TYPE_ECDSA_NIST_P384
		: HSM_KEY_TYPE_ECDSA_NIST_P256;
	hsm_signature_scheme_id_t scheme = (hsm_signature_scheme_id_t) type;
	const uint8_t *d = Field(&v[i], "d", &dl);
	uint8_t xy[96], out[96], comp[49], sig[97], msg[5] = "hello";
	uint32_t id = ImportKey(type, d, dl);
	op_pub_key_recovery_args_t r;
	op_pub_key_dec_args_t dec;
	hsm_verification_status_t st = 0;

	CHECK(id != 0);
	memcpy(xy, Field(&v[i], "x", &l), c);
	memcpy(xy + c, Field(&v[i], "y", &l), c);
	memset(&r, 0, sizeof(r));
	r.key_identifier = id;
	r.out_key = out;
	r.out_key_size = (uint16_t) (2 * c);
	r.key_type = type;
	CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_NO_ERROR);
	if (memcmp(out, xy, 2 * c) != 0) {
	    fprintf(stderr, "ec_keys %s: recovered key differs\n", v[i].name);
	    unitChecksFailed++;
	}
	memcpy(comp, xy, c);
	comp[c] = xy[2 * c - 1] & 1;
	memset(&dec, 0, sizeof(dec));
	dec.key = comp;
	dec.key_size = (uint16_t) (c + 1);
	dec.out_key = out;
	dec.out_key_size = (uint16_t) (2 * c);
	dec.key_type = type;
	memset(out, 0, sizeof(out));
	CHECK_EQ(hsm_pub_key_decompression(sess, &dec), HSM_NO_ERROR);
	if (memcmp(out, xy, 2 * c) != 0) {
	    fprintf(stderr, "ec_keys %s: decompressed key differs\n",
		    v[i].name);
	    unitChecksFailed++;
	}
	/* The other parity is the other point: y differs. */
	comp[c] ^= 1;
	CHECK_EQ(hsm_pub_key_decompression(sess, &dec), HSM_NO_ERROR);
	CHECK(memcmp(out, xy, c) == 0 && memcmp(out + c, xy + c, c) != 0);
	CHECK_EQ(Sign(id, scheme, HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE
		| HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT, msg, 5, sig,
		(uint16_t) (2 * c + 1)), HSM_NO_ERROR);
	CHECK_EQ(Verify(xy, (uint16_t) (2 * c), scheme,
		HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE
		| HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT, msg, 5, sig,
		(uint16_t) (2 * c + 1), &st), HSM_NO_ERROR);
	CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
    }
    FreeVectors(v, count);
}

static void
TestSignRoundTrips(void)
{
    static const hsm_key_type_t types[] = {HSM_KEY_TYPE_ECDSA_NIST_P256,
	    HSM_KEY_TYPE_ECDSA_NIST_P384, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256,
	    HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384,
	    HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384};
    uint8_t msg[300], dig[48], pub[96], sig[97];
    int t, k, seen[2];

    RAND_bytes(msg, sizeof(msg));
    for (t = 0; t < 5; t++) {
	size_t c = (types[t] == HSM_KEY_TYPE_ECDSA_NIST_P256
		|| types[t] == HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256) ? 32 : 48;
	hsm_signature_scheme_id_t scheme = (hsm_signature_scheme_id_t) types[t];
	uint16_t sl = (uint16_t) (2 * c + 1);
	uint32_t id = GenerateKey(types[t], pub, (uint16_t) (2 * c)), ref = 0;
	hsm_verification_status_t st;

	CHECK(id != 0);
	CHECK_EQ(Hash(c == 32 ? HSM_HASH_ALGO_SHA_256 : HSM_HASH_ALGO_SHA_384,
		msg, sizeof(msg), dig, (uint32_t) c), HSM_NO_ERROR);
	/* A digest signature verifies as a message signature. */
	CHECK_EQ(Sign(id, scheme, HSM_OP_GENERATE_SIGN_FLAGS_INPUT_DIGEST, dig,
		(uint32_t) c, sig, sl), HSM_NO_ERROR);
	CHECK_EQ(sig[2 * c], 0);
	st = 0;
	CHECK_EQ(Verify(pub, (uint16_t) (2 * c), scheme,
		HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE, msg, sizeof(msg), sig,
		sl, &st), HSM_NO_ERROR);
	CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
	/* Compressed point: Ry is the parity; both parities occur. */
	seen[0] = seen[1] = 0;
	CHECK_EQ(ImportPublic(types[t], pub, (uint16_t) (2 * c), &ref),
		HSM_NO_ERROR);
	for (k = 0; k < 12; k++) {
	    CHECK_EQ(Sign(id, scheme, HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE
		    | HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT, msg,
		    sizeof(msg), sig, sl), HSM_NO_ERROR);
	    CHECK(sig[2 * c] <= 1);
	    seen[sig[2 * c] & 1] = 1;
	    st = 0;
	    CHECK_EQ(Verify((uint8_t *) &ref, 4, scheme,
		    HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE
		    | HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT
		    | HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, msg, sizeof(msg),
		    sig, sl, &st), HSM_NO_ERROR);
	    CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
	    /* The wrong Ry is refused with COMPRESSED_POINT ... */
	    sig[2 * c] ^= 1;
	    st = HSM_VERIFICATION_STATUS_SUCCESS;
	    CHECK_EQ(Verify((uint8_t *) &ref, 4, scheme,
		    HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE
		    | HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT
		    | HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, msg, sizeof(msg),
		    sig, sl, &st), HSM_NO_ERROR);
	    CHECK(st != HSM_VERIFICATION_STATUS_SUCCESS);
	    /* ... and ignored without it. */
	    CHECK_EQ(Verify((uint8_t *) &ref, 4, scheme,
		    HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE
		    | HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, msg, sizeof(msg),
		    sig, sl, &st), HSM_NO_ERROR);
	    CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
	}
	CHECK(seen[0] && seen[1]);
	/* A changed message fails. */
	msg[7] ^= 1;
	CHECK_EQ(Verify(pub, (uint16_t) (2 * c), scheme,
		HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE, msg, sizeof(msg), sig,
		sl, &st), HSM_NO_ERROR);
	CHECK(st != HSM_VERIFICATION_STATUS_SUCCESS);
	msg[7] ^= 1;
    }
}

static void
TestSignErrors(void)
{
    uint8_t pub[64], pub384[96], dig[64] = {1}, sig[97], aesKey[32] = {0};
    uint32_t id = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64);
    uint32_t id384 = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P384, pub384, 96);
    uint32_t aes = ImportKey(HSM_KEY_TYPE_AES_256, aesKey, 32);
    const hsm_signature_scheme_id_t p256 =
	    HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256;
    op_prepare_sign_args_t prep;
    int i;

    CHECK(id != 0 && id384 != 0 && aes != 0);
    CHECK_EQ(Sign(id, HSM_SIGNATURE_SCHEME_ECDSA_NIST_P224_SHA_256, 0, dig,
	    28, sig, 57), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(Sign(id, HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_256_SHA_256, 0,
	    dig, 32, sig, 65), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(Sign(id, 0x40, 0, dig, 32, sig, 65), HSM_INVALID_PARAM);
    CHECK_DETAIL("scheme_id");
    CHECK_EQ(Sign(id, p256, 0, dig, 31, sig, 65), HSM_INVALID_PARAM);
    CHECK_DETAIL("message_size is 31, must be 32");
    CHECK_EQ(Sign(id, p256, 0, dig, 32, sig, 64), HSM_INVALID_PARAM);
    CHECK_DETAIL("signature_size is 64, must be 65");
    CHECK_EQ(Sign(id, p256, 0x08, dig, 32, sig, 65), HSM_INVALID_PARAM);
    CHECK_DETAIL("flags");
    CHECK_EQ(Sign(id384, p256, 0, dig, 32, sig, 65), HSM_INVALID_PARAM);
    CHECK_DETAIL("scheme_id");
    CHECK(Sign(aes, p256, 0, dig, 32, sig, 65) != HSM_NO_ERROR);
    CHECK_EQ(Sign(0xFEED, p256, 0, dig, 32, sig, 65), HSM_UNKNOWN_ID);
    CHECK_EQ(Sign(id, p256, 0, NULL, 32, sig, 65), HSM_INVALID_ADDRESS);
    CHECK_EQ(Sign(id, p256, 0, dig, 32, NULL, 65), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_generate_signature(signSvc, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_prepare_signature(signSvc, NULL), HSM_INVALID_ADDRESS);
    /* Low-latency signatures need a preparation each. */
    CHECK_EQ(Sign(id, p256, HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE,
	    dig, 32, sig, 65), HSM_INVALID_PARAM);
    CHECK_DETAIL("prepare");
    memset(&prep, 0, sizeof(prep));
    prep.scheme_id = p256;
    prep.flags = HSM_OP_PREPARE_SIGN_INPUT_DIGEST;
    CHECK_EQ(hsm_prepare_signature(signSvc, &prep), HSM_NO_ERROR);
    /* A preparation for another scheme does not count. */
    CHECK_EQ(Sign(id384, HSM_SIGNATURE_SCHEME_ECDSA_NIST_P384_SHA_384,
	    HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE, dig, 48, sig, 97),
	    HSM_INVALID_PARAM);
    /* A refused call does not use the preparation up. */
    CHECK_EQ(Sign(id, p256, HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE,
	    dig, 31, sig, 65), HSM_INVALID_PARAM);
    CHECK_EQ(Sign(id, p256, HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE,
	    dig, 32, sig, 65), HSM_NO_ERROR);
    CHECK_EQ(Sign(id, p256, HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE,
	    dig, 32, sig, 65), HSM_INVALID_PARAM);
    for (i = 0; i < 16; i++) {
	CHECK_EQ(hsm_prepare_signature(signSvc, &prep), HSM_NO_ERROR);
    }
    CHECK_EQ(hsm_prepare_signature(signSvc, &prep), HSM_OUT_OF_MEMORY);
    CHECK_DETAIL("prepared");
    for (i = 0; i < 16; i++) {
	CHECK_EQ(Sign(id, p256,
		HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE, dig, 32, sig,
		65), HSM_NO_ERROR);
    }
    prep.scheme_id = HSM_SIGNATURE_SCHEME_ECDSA_NIST_P224_SHA_256;
    CHECK_EQ(hsm_prepare_signature(signSvc, &prep), HSM_FEATURE_NOT_SUPPORTED);
    prep.scheme_id = p256;
    prep.flags = 0x80;
    CHECK_EQ(hsm_prepare_signature(signSvc, &prep), HSM_INVALID_PARAM);
    CHECK_EQ(hsm_prepare_signature(verSvc, &prep), HSM_UNKNOWN_HANDLE);
    CHECK_EQ(Sign(id, p256, 0, dig, 32, sig, 65), HSM_NO_ERROR);
    {
	op_generate_sign_args_t s;
	open_svc_sign_gen_args_t ga = {0, {0}};
	hsm_hdl_t h;

	memset(&s, 0, sizeof(s));
	s.key_identifier = id;
	s.message = dig;
	s.message_size = 32;
	s.signature = sig;
	s.signature_size = 65;
	s.scheme_id = p256;
	CHECK_EQ(hsm_generate_signature(cipherSvc, &s), HSM_UNKNOWN_HANDLE);
	CHECK_EQ(hsm_open_signature_generation_service(ks, NULL, &h),
		HSM_INVALID_ADDRESS);
	CHECK(hsm_open_signature_generation_service(sess, &ga, &h)
		!= HSM_NO_ERROR);
	CHECK_EQ(hsm_open_signature_generation_service(ks, &ga, &h),
		HSM_NO_ERROR);
	CHECK_EQ(hsm_generate_signature(h, &s), HSM_NO_ERROR);
	CHECK_EQ(hsm_close_signature_generation_service(h), HSM_NO_ERROR);
	CHECK_EQ(hsm_generate_signature(h, &s), HSM_UNKNOWN_HANDLE);
    }
}

static void
TestVerifyErrors(void)
{
    uint8_t pub[64], bad[64], pub384[96], dig[32] = {7}, sig[65];
    uint32_t id = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64);
    uint32_t id384 = GenerateKey(HSM_KEY_TYPE_ECDSA_NIST_P384, pub384, 96);
    const hsm_signature_scheme_id_t p256 =
	    HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256;
    hsm_verification_status_t st;
    uint32_t ref = 0, ref384 = 0, bogus;
    op_verify_sign_args_t a;

    CHECK(id != 0 && id384 != 0);
    CHECK_EQ(Sign(id, p256, 0, dig, 32, sig, 65), HSM_NO_ERROR);
    st = 0;
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 32, sig, 65, &st), HSM_NO_ERROR);
    CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
    /* Every refusal leaves a failure status. */
    st = HSM_VERIFICATION_STATUS_SUCCESS;
    CHECK_EQ(Verify(pub, 63, p256, 0, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("key_size is 63, must be 64");
    CHECK(st != HSM_VERIFICATION_STATUS_SUCCESS);
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 32, sig, 64, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("signature_size");
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 48, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("message_size");
    CHECK_EQ(Verify(pub, 64, HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_224_SHA_256,
	    0, dig, 32, sig, 57, &st), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(Verify(pub, 64, p256, 0x40, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_EQ(Verify(NULL, 64, p256, 0, dig, 32, sig, 65, &st),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 32, NULL, 65, &st),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 32, sig, 65, NULL),
	    HSM_INVALID_ADDRESS);
    CHECK_DETAIL("status");
    memcpy(bad, pub, 64);
    bad[40] ^= 4;
    CHECK_EQ(Verify(bad, 64, p256, 0, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("not a point");
    /* A point with x, y >= p is refused too. */
    memset(bad, 0xFF, sizeof(bad));
    CHECK_EQ(Verify(bad, 64, p256, 0, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    /* Imported keys. */
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P256, bad, 64, &ref),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("not a point");
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 65, &ref),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("key_size");
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_AES_128, pub, 64, &ref),
	    HSM_INVALID_PARAM);
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P224, pub, 56, &ref),
	    HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P256, NULL, 64, &ref),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64, NULL),
	    HSM_INVALID_ADDRESS);
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P256, pub, 64, &ref),
	    HSM_NO_ERROR);
    CHECK_EQ(ImportPublic(HSM_KEY_TYPE_ECDSA_NIST_P384, pub384, 96, &ref384),
	    HSM_NO_ERROR);
    CHECK(ref != ref384);
    st = 0;
    CHECK_EQ(Verify((uint8_t *) &ref, 4, p256,
	    HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, dig, 32, sig, 65, &st),
	    HSM_NO_ERROR);
    CHECK(st == HSM_VERIFICATION_STATUS_SUCCESS);
    CHECK_EQ(Verify((uint8_t *) &ref384, 4, p256,
	    HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("key reference");
    CHECK_EQ(Verify((uint8_t *) &ref, 64, p256,
	    HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, dig, 32, sig, 65, &st),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("key_size is 64, must be 4");
    bogus = ref384 + 1000;
    CHECK_EQ(Verify((uint8_t *) &bogus, 4, p256,
	    HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL, dig, 32, sig, 65, &st),
	    HSM_UNKNOWN_ID);
    /* References are valid only in the service that made them. */
    {
	open_svc_sign_ver_args_t va = {0, {0}};
	hsm_hdl_t other;

	CHECK_EQ(hsm_open_signature_verification_service(sess, NULL, &other),
		HSM_INVALID_ADDRESS);
	CHECK(hsm_open_signature_verification_service(ks, &va, &other)
		!= HSM_NO_ERROR);
	CHECK_EQ(hsm_open_signature_verification_service(sess, &va, &other),
		HSM_NO_ERROR);
	memset(&a, 0, sizeof(a));
	a.key = (uint8_t *) &ref;
	a.key_size = 4;
	a.message = dig;
	a.message_size = 32;
	a.signature = sig;
	a.signature_size = 65;
	a.scheme_id = p256;
	a.flags = HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL;
	CHECK_EQ(hsm_verify_signature(other, &a, &st), HSM_UNKNOWN_ID);
	CHECK_DETAIL("not imported into this verification service");
	CHECK_EQ(hsm_close_signature_verification_service(other),
		HSM_NO_ERROR);
	CHECK_EQ(hsm_verify_signature(other, &a, &st), HSM_UNKNOWN_HANDLE);
	CHECK_EQ(hsm_verify_signature(signSvc, &a, &st), HSM_UNKNOWN_HANDLE);
	CHECK_EQ(hsm_verify_signature(verSvc, NULL, &st), HSM_INVALID_ADDRESS);
    }
    /* The service holds at most 1024 keys; then HSM_OUT_OF_MEMORY. */
    {
	open_svc_sign_ver_args_t va = {0, {0}};
	op_import_public_key_args_t ia;
	hsm_hdl_t full;
	uint32_t r;
	int i;

	CHECK_EQ(hsm_open_signature_verification_service(sess, &va, &full),
		HSM_NO_ERROR);
	memset(&ia, 0, sizeof(ia));
	ia.key = pub;
	ia.key_size = 64;
	ia.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
	for (i = 0; i < 1024; i++) {
	    if (hsm_import_public_key(full, &ia, &r) != HSM_NO_ERROR) {
		break;
	    }
	}
	CHECK_EQ(i, 1024);
	CHECK_EQ(hsm_import_public_key(full, &ia, &r), HSM_OUT_OF_MEMORY);
	CHECK_EQ(hsm_close_signature_verification_service(full), HSM_NO_ERROR);
    }
    /* Bad r and s: a failure status, not an error. */
    memset(sig, 0, 64);
    st = HSM_VERIFICATION_STATUS_SUCCESS;
    CHECK_EQ(Verify(pub, 64, p256, 0, dig, 32, sig, 65, &st), HSM_NO_ERROR);
    CHECK(st != HSM_VERIFICATION_STATUS_SUCCESS);
    memset(sig, 0xFF, 64);
    CHECK_EQ(Verify(pub, 64, p256, HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT,
	    dig, 32, sig, 65, &st), HSM_NO_ERROR);
    CHECK(st != HSM_VERIFICATION_STATUS_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Public key operations                                                */
/* ------------------------------------------------------------------ */

static hsm_err_t
Reconstruct(hsm_key_type_t type, const uint8_t *rec, const uint8_t *hash,
	uint16_t hashLen, const uint8_t *ca, uint8_t *out, uint16_t size)
{
    op_pub_key_rec_args_t a;

    memset(&a, 0, sizeof(a));
    a.pub_rec = (uint8_t *) rec;
    a.hash = (uint8_t *) hash;
    a.ca_key = (uint8_t *) ca;
    a.out_key = out;
    a.pub_rec_size = a.ca_key_size = a.out_key_size = size;
    a.hash_size = hashLen;
    a.key_type = type;
    return hsm_pub_key_reconstruction(sess, &a);
}

/*
 * TestPubKeyOps --
 *	Reconstruction: Q1 * 1 + Q2 and Q1 * (n + 1) + Q2 both equal the
 *	public key of the scalar d1 + d2, imported and recovered; Q1 *
 *	(n - 1) + Q1 is the point at infinity and refused.  Decompression
 *	and recovery errors.
 */
static void
TestPubKeyOps(void)
{
    /* n of P-256 (FIPS 186-4 D.1.2.3) and n - 1, n + 1. */
    static const char nHex[] =
	    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    Vector *v;
    int count = LoadVectors("ec_keys.txt", &v), i;
    const Vector *k1 = NULL, *k2 = NULL;
    uint8_t q1[64], q2[64], out[64], expect[64], one = 1, sum[32];
    uint8_t nm1[32], np1[33], comp[33];
    size_t l;
    BIGNUM *a = NULL, *b = NULL, *n = NULL;
    BN_CTX *bn = BN_CTX_new();
    uint32_t id;
    op_pub_key_recovery_args_t r;
    op_pub_key_dec_args_t d;

    for (i = 0; i < count; i++) {
	if (strcmp(v[i].name, "camp-ecies-recipient-1") == 0) {
	    k1 = &v[i];
	} else if (strcmp(v[i].name, "camp-ecies-recipient-2") == 0) {
	    k2 = &v[i];
	}
    }
    CHECK(k1 != NULL && k2 != NULL);
    if (k1 == NULL || k2 == NULL) {
	FreeVectors(v, count);
	BN_CTX_free(bn);
	return;
    }
    memcpy(q1, Field(k1, "x", &l), 32);
    memcpy(q1 + 32, Field(k1, "y", &l), 32);
    memcpy(q2, Field(k2, "x", &l), 32);
    memcpy(q2 + 32, Field(k2, "y", &l), 32);
    BN_hex2bn(&n, nHex);
    a = BN_bin2bn(Field(k1, "d", &l), 32, NULL);
    b = BN_bin2bn(Field(k2, "d", &l), 32, NULL);
    BN_mod_add(a, a, b, n, bn);
    BN_bn2binpad(a, sum, 32);
    BN_sub(b, n, BN_value_one());
    BN_bn2binpad(b, nm1, 32);
    BN_add(b, n, BN_value_one());
    BN_bn2binpad(b, np1, 33);
    id = ImportKey(HSM_KEY_TYPE_ECDSA_NIST_P256, sum, 32);
    CHECK(id != 0);
    memset(&r, 0, sizeof(r));
    r.key_identifier = id;
    r.out_key = expect;
    r.out_key_size = 64;
    r.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_NO_ERROR);
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, &one, 1, q2, out,
	    64), HSM_NO_ERROR);
    CHECK_MEM(out, expect, 64);
    memset(out, 0, sizeof(out));
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, np1, 33, q2, out,
	    64), HSM_NO_ERROR);
    CHECK_MEM(out, expect, 64);
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, nm1, 32, q1, out,
	    64), HSM_INVALID_PARAM);
    CHECK_DETAIL("infinity");
    /* Errors. */
    q2[5] ^= 1;
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, &one, 1, q2, out,
	    64), HSM_INVALID_PARAM);
    CHECK_DETAIL("ca_key");
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q2, &one, 1, q1, out,
	    64), HSM_INVALID_PARAM);
    CHECK_DETAIL("pub_rec");
    q2[5] ^= 1;
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, &one, 0, q2, out,
	    64), HSM_INVALID_PARAM);
    CHECK_DETAIL("hash_size");
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, &one, 1, q2, out,
	    65), HSM_INVALID_PARAM);
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P224, q1, &one, 1, q2, out,
	    56), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_AES_256, q1, &one, 1, q2, out, 64),
	    HSM_INVALID_PARAM);
    CHECK_EQ(Reconstruct(HSM_KEY_TYPE_ECDSA_NIST_P256, q1, NULL, 1, q2, out,
	    64), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_pub_key_reconstruction(sess, NULL), HSM_INVALID_ADDRESS);
    {
	op_pub_key_rec_args_t ra;

	memset(&ra, 0, sizeof(ra));
	CHECK_EQ(hsm_pub_key_reconstruction(cipherSvc, &ra),
		HSM_UNKNOWN_HANDLE);
    }
    /* Decompression errors. */
    memcpy(comp, q1, 32);
    memset(&d, 0, sizeof(d));
    d.key = comp;
    d.key_size = 33;
    d.out_key = out;
    d.out_key_size = 64;
    d.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    comp[32] = 2;
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_INVALID_PARAM);
    CHECK_DETAIL("lsb_y");
    comp[32] = 0;
    d.key_size = 64;
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_INVALID_PARAM);
    CHECK_DETAIL("key_size is 64, must be 33");
    d.key_size = 33;
    d.out_key_size = 65;
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_INVALID_PARAM);
    d.out_key_size = 64;
    memset(comp, 0xFF, 32);	/* x >= p */
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_INVALID_PARAM);
    CHECK_DETAIL("x coordinate");
    d.out_key = NULL;
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_INVALID_ADDRESS);
    d.out_key = out;
    d.key_type = HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256;
    CHECK_EQ(hsm_pub_key_decompression(sess, &d), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_EQ(hsm_pub_key_decompression(sess, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_pub_key_decompression(ks, &d), HSM_UNKNOWN_HANDLE);
    /* Recovery errors. */
    r.key_type = HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256;
    CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_INVALID_PARAM);
    CHECK_DETAIL("key_type");
    r.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    r.out_key_size = 32;
    CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_INVALID_PARAM);
    CHECK_DETAIL("out_key_size");
    r.out_key_size = 64;
    r.key_identifier = 0xABCDEF;
    CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_UNKNOWN_ID);
    r.key_identifier = id;
    r.out_key = NULL;
    CHECK_EQ(hsm_pub_key_recovery(ks, &r), HSM_INVALID_ADDRESS);
    r.out_key = out;
    CHECK_EQ(hsm_pub_key_recovery(ks, NULL), HSM_INVALID_ADDRESS);
    CHECK_EQ(hsm_pub_key_recovery(sess, &r), HSM_UNKNOWN_HANDLE);
    {
	uint8_t k[16] = {0};
	uint32_t aes = ImportKey(HSM_KEY_TYPE_AES_128, k, 16);

	r.key_identifier = aes;
	CHECK(hsm_pub_key_recovery(ks, &r) != HSM_NO_ERROR);
    }
    BN_free(a);
    BN_free(b);
    BN_free(n);
    BN_CTX_free(bn);
    FreeVectors(v, count);
}

/* Closing the key store closes the services opened on it. */
static void
TestCloseCascade(void)
{
    open_svc_key_store_args_t kargs;
    open_svc_cipher_args_t ca = {0, {0}};
    open_svc_mac_args_t ma = {0, {0}};
    open_svc_sign_gen_args_t ga = {0, {0}};
    hsm_hdl_t ks2, c2, m2, g2;
    op_prepare_sign_args_t prep;

    memset(&kargs, 0, sizeof(kargs));
    kargs.key_store_identifier = 0x777;
    kargs.authentication_nonce = 1;
    kargs.max_updates_number = 10;
    kargs.flags = HSM_SVC_KEY_STORE_FLAGS_CREATE;
    CHECK_EQ(hsm_open_key_store_service(sess, &kargs, &ks2), HSM_NO_ERROR);
    CHECK_EQ(hsm_open_cipher_service(ks2, &ca, &c2), HSM_NO_ERROR);
    CHECK_EQ(hsm_open_mac_service(ks2, &ma, &m2), HSM_NO_ERROR);
    CHECK_EQ(hsm_open_signature_generation_service(ks2, &ga, &g2),
	    HSM_NO_ERROR);
    memset(&prep, 0, sizeof(prep));
    prep.scheme_id = HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256;
    CHECK_EQ(hsm_prepare_signature(g2, &prep), HSM_NO_ERROR);
    CHECK_EQ(hsm_close_key_store_service(ks2), HSM_NO_ERROR);
    CHECK_EQ(hsm_prepare_signature(g2, &prep), HSM_UNKNOWN_HANDLE);
    CHECK_EQ(hsm_close_cipher_service(c2), HSM_UNKNOWN_HANDLE);
    CHECK_EQ(hsm_close_mac_service(m2), HSM_UNKNOWN_HANDLE);
}

int
main(void)
{
    FindDataDir();
    Setup();
    UNIT_RUN(TestAesEcbCbcVectors);
    UNIT_RUN(TestAesCcmVectors);
    UNIT_RUN(TestAesGcmVectors);
    UNIT_RUN(TestCipherRoundTrips);
    UNIT_RUN(TestCipherErrors);
    UNIT_RUN(TestEciesVectors);
    UNIT_RUN(TestEciesRoundTrip);
    UNIT_RUN(TestEciesErrors);
    UNIT_RUN(TestHashVectors);
    UNIT_RUN(TestCmacVectors);
    UNIT_RUN(TestMacErrors);
    UNIT_RUN(TestRng);
    UNIT_RUN(TestEcdsaVerifyVectors);
    UNIT_RUN(TestKeyVectors);
    UNIT_RUN(TestSignRoundTrips);
    UNIT_RUN(TestSignErrors);
    UNIT_RUN(TestVerifyErrors);
    UNIT_RUN(TestPubKeyOps);
    UNIT_RUN(TestCloseCascade);
    Teardown();
    return UNIT_DONE("hsm_crypto");
}
