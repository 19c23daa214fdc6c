/*
 * bench_hsm.c --
 *
 *	What the engine adds to a crypto call: raw OpenSSL EVP against the
 *	engine's API, in one process, for the small operations where the
 *	per-call cost shows.  Raw OpenSSL is measured the way
 *	p11bench's "OpenSSL" mode measures it: algorithms fetched once,
 *	contexts allocated once, every operation re-initialised with its key
 *	(the key schedule included) and a fresh IV.
 *
 *	Each figure is the median of 3 runs of about 1 s (raw and engine runs
 *	interleaved).  Output: ops/s of both and the microseconds the engine
 *	adds per call.  Built by make bench, never by make test; no assertion
 *	depends on time.
 *
 *	    bench_hsm ?-t seconds? ?-o substring?
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hsm_api.h"

static double runSeconds = 1.0;

static double
Now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
Fail(const char *what)
{
    fprintf(stderr, "bench_hsm: %s failed: %s\n", what, hsm_spps_last_error());
    exit(1);
}

/* ------------------------------------------------------------------ */
/* The operations                                                       */
/* ------------------------------------------------------------------ */

typedef struct Bench {
    /* raw OpenSSL */
    EVP_CIPHER_CTX *cctx;
    EVP_CIPHER *gcm, *cbc;
    EVP_MAC_CTX *mctx;
    EVP_MD_CTX *dctx;
    EVP_MD *sha256;
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *sctx, *vctx;
    uint8_t key[32], der[80];
    size_t derLen;
    /* engine */
    hsm_hdl_t sess, ks, km, cipher, mac, sign, ver, hash, rng;
    uint32_t aesId, ecId, ref;
    uint8_t pub[64], sig[65];
    /* shared */
    uint8_t in[64], out[128], iv[16], digest[32];
    uint64_t counter;
} Bench;

typedef int (*OpFn)(Bench *b);

static void
NextIv(Bench *b)
{
    b->counter++;
    memcpy(b->iv, &b->counter, sizeof(b->counter));
}

static int
RawGcm(Bench *b)
{
    int n, f;
    OSSL_PARAM p[2];

    NextIv(b);
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    b->out + 64, 16);
    p[1] = OSSL_PARAM_construct_end();
    return EVP_EncryptInit_ex2(b->cctx, b->gcm, b->key, b->iv, NULL) == 1
	    && EVP_EncryptUpdate(b->cctx, b->out, &n, b->in, 64) == 1
	    && EVP_EncryptFinal_ex(b->cctx, b->out + n, &f) == 1
	    && EVP_CIPHER_CTX_get_params(b->cctx, p) == 1;
}

static int
HsmGcm(Bench *b)
{
    op_auth_enc_args_t a;

    NextIv(b);
    memset(&a, 0, sizeof(a));
    a.key_identifier = b->aesId;
    a.iv = b->iv;
    a.iv_size = 12;
    a.ae_algo = HSM_AUTH_ENC_ALGO_AES_GCM;
    a.flags = HSM_AUTH_ENC_FLAGS_ENCRYPT;
    a.input = b->in;
    a.input_size = 64;
    a.output = b->out;
    a.output_size = 80;
    return hsm_auth_enc(b->cipher, &a) == HSM_NO_ERROR;
}

static int
RawCbc(Bench *b)
{
    int n, f;

    NextIv(b);
    return EVP_EncryptInit_ex2(b->cctx, b->cbc, b->key, b->iv, NULL) == 1
	    && EVP_CIPHER_CTX_set_padding(b->cctx, 0) == 1
	    && EVP_EncryptUpdate(b->cctx, b->out, &n, b->in, 64) == 1
	    && EVP_EncryptFinal_ex(b->cctx, b->out + n, &f) == 1;
}

static int
HsmCbc(Bench *b)
{
    op_cipher_one_go_args_t a;

    NextIv(b);
    memset(&a, 0, sizeof(a));
    a.key_identifier = b->aesId;
    a.iv = b->iv;
    a.iv_size = 16;
    a.cipher_algo = HSM_CIPHER_ONE_GO_ALGO_AES_CBC;
    a.flags = HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT;
    a.input = b->in;
    a.input_size = 64;
    a.output = b->out;
    a.output_size = 64;
    return hsm_cipher_one_go(b->cipher, &a) == HSM_NO_ERROR;
}

static int
RawCmac(Bench *b)
{
    size_t len;

    return EVP_MAC_init(b->mctx, b->key, 32, NULL) == 1
	    && EVP_MAC_update(b->mctx, b->in, 64) == 1
	    && EVP_MAC_final(b->mctx, b->out, &len, 16) == 1;
}

static int
HsmCmac(Bench *b)
{
    op_mac_one_go_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = b->aesId;
    a.algorithm = HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC;
    a.flags = HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION;
    a.payload = b->in;
    a.payload_size = 64;
    a.mac = b->out;
    a.mac_size = 16;
    return hsm_mac_one_go(b->mac, &a, NULL) == HSM_NO_ERROR;
}

static int
RawSha(Bench *b)
{
    unsigned int n;

    return EVP_DigestInit_ex2(b->dctx, b->sha256, NULL) == 1
	    && EVP_DigestUpdate(b->dctx, b->in, 64) == 1
	    && EVP_DigestFinal_ex(b->dctx, b->out, &n) == 1;
}

static int
HsmSha(Bench *b)
{
    op_hash_one_go_args_t a;

    memset(&a, 0, sizeof(a));
    a.input = b->in;
    a.input_size = 64;
    a.output = b->out;
    a.output_size = 32;
    a.algo = HSM_HASH_ALGO_SHA_256;
    return hsm_hash_one_go(b->hash, &a) == HSM_NO_ERROR;
}

static int
RawSign(Bench *b)
{
    size_t len = sizeof(b->out);

    return EVP_PKEY_sign_init(b->sctx) == 1
	    && EVP_PKEY_sign(b->sctx, b->out, &len, b->digest, 32) == 1;
}

static int
HsmSign(Bench *b)
{
    op_generate_sign_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = b->ecId;
    a.message = b->digest;
    a.message_size = 32;
    a.signature = b->out;
    a.signature_size = 65;
    a.scheme_id = HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256;
    a.flags = HSM_OP_GENERATE_SIGN_FLAGS_INPUT_DIGEST;
    return hsm_generate_signature(b->sign, &a) == HSM_NO_ERROR;
}

static int
RawVerify(Bench *b)
{
    return EVP_PKEY_verify_init(b->vctx) == 1
	    && EVP_PKEY_verify(b->vctx, b->der, b->derLen, b->digest, 32) == 1;
}

static int
VerifyWith(Bench *b, int internal)
{
    op_verify_sign_args_t a;
    hsm_verification_status_t st = 0;

    memset(&a, 0, sizeof(a));
    a.key = internal ? (uint8_t *) &b->ref : b->pub;
    a.key_size = internal ? 4 : 64;
    a.message = b->digest;
    a.message_size = 32;
    a.signature = b->sig;
    a.signature_size = 65;
    a.scheme_id = HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256;
    a.flags = internal ? HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL : 0;
    return hsm_verify_signature(b->ver, &a, &st) == HSM_NO_ERROR
	    && st == HSM_VERIFICATION_STATUS_SUCCESS;
}

static int HsmVerify(Bench *b) { return VerifyWith(b, 0); }
static int HsmVerifyRef(Bench *b) { return VerifyWith(b, 1); }

static int
RawRng(Bench *b)
{
    return RAND_bytes(b->out, 32) == 1;
}

static int
HsmRng(Bench *b)
{
    op_get_random_args_t a;

    a.output = b->out;
    a.random_size = 32;
    return hsm_get_random(b->rng, &a) == HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                               */
/* ------------------------------------------------------------------ */

static char stateDir[64];

static int
RemoveEntry(const char *path, const struct stat *sb, int flag,
	struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove(path);
}

static void
Setup(Bench *b)
{
    open_session_args_t sa = {0, 0, 0};
    open_svc_key_store_args_t ka;
    open_svc_key_management_args_t ma = {0, {0}};
    open_svc_cipher_args_t ca = {0, {0}};
    open_svc_mac_args_t mca = {0, {0}};
    open_svc_sign_gen_args_t ga = {0, {0}};
    open_svc_sign_ver_args_t va = {0, {0}};
    open_svc_hash_args_t ha = {0, {0}};
    open_svc_rng_args_t ra = {0, {0}};
    op_generate_key_args_t g;
    op_import_public_key_args_t ia;
    OSSL_PARAM p[2];
    size_t len;

    memset(b, 0, sizeof(*b));
    RAND_bytes(b->key, sizeof(b->key));
    RAND_bytes(b->in, sizeof(b->in));
    RAND_bytes(b->digest, sizeof(b->digest));

    /* Raw OpenSSL. */
    b->cctx = EVP_CIPHER_CTX_new();
    b->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    b->cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    {
	EVP_MAC *cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);

	b->mctx = EVP_MAC_CTX_new(cmac);
	EVP_MAC_free(cmac);
    }
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
	    (char *) "AES-256-CBC", 0);
    p[1] = OSSL_PARAM_construct_end();
    b->dctx = EVP_MD_CTX_new();
    b->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    b->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (b->cctx == NULL || b->gcm == NULL || b->cbc == NULL || b->mctx == NULL
	    || EVP_MAC_CTX_set_params(b->mctx, p) != 1 || b->dctx == NULL
	    || b->sha256 == NULL || b->pkey == NULL
	    || (b->sctx = EVP_PKEY_CTX_new_from_pkey(NULL, b->pkey, NULL)) == NULL
	    || (b->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, b->pkey, NULL)) == NULL) {
	fprintf(stderr, "bench_hsm: OpenSSL set-up failed\n");
	exit(1);
    }
    len = sizeof(b->der);
    if (EVP_PKEY_sign_init(b->sctx) != 1
	    || EVP_PKEY_sign(b->sctx, b->der, &len, b->digest, 32) != 1) {
	fprintf(stderr, "bench_hsm: OpenSSL signing failed\n");
	exit(1);
    }
    b->derLen = len;

    /* The engine. */
    snprintf(stateDir, sizeof(stateDir), "/tmp/spps-bench-XXXXXX");
    if (mkdtemp(stateDir) == NULL) {
	perror("mkdtemp");
	exit(1);
    }
    memset(&ka, 0, sizeof(ka));
    ka.key_store_identifier = 1;
    ka.authentication_nonce = 2;
    ka.max_updates_number = 10;
    ka.flags = HSM_SVC_KEY_STORE_FLAGS_CREATE;
    if (hsm_spps_open_session_at(stateDir, &sa, &b->sess) != HSM_NO_ERROR
	    || hsm_open_key_store_service(b->sess, &ka, &b->ks) != HSM_NO_ERROR
	    || hsm_open_key_management_service(b->ks, &ma, &b->km)
		    != HSM_NO_ERROR
	    || hsm_open_cipher_service(b->ks, &ca, &b->cipher) != HSM_NO_ERROR
	    || hsm_open_mac_service(b->ks, &mca, &b->mac) != HSM_NO_ERROR
	    || hsm_open_signature_generation_service(b->ks, &ga, &b->sign)
		    != HSM_NO_ERROR
	    || hsm_open_signature_verification_service(b->sess, &va, &b->ver)
		    != HSM_NO_ERROR
	    || hsm_open_hash_service(b->sess, &ha, &b->hash) != HSM_NO_ERROR
	    || hsm_open_rng_service(b->sess, &ra, &b->rng) != HSM_NO_ERROR) {
	Fail("opening the engine's services");
    }
    memset(&g, 0, sizeof(g));
    g.key_identifier = &b->aesId;
    g.flags = HSM_OP_KEY_GENERATION_FLAGS_CREATE;
    g.key_type = HSM_KEY_TYPE_AES_256;
    g.key_group = 1;
    if (hsm_generate_key(b->km, &g) != HSM_NO_ERROR) {
	Fail("AES key generation");
    }
    g.key_identifier = &b->ecId;
    g.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    g.out_size = 64;
    g.out_key = b->pub;
    if (hsm_generate_key(b->km, &g) != HSM_NO_ERROR) {
	Fail("EC key generation");
    }
    if (!HsmSign(b)) {
	Fail("signing");
    }
    memcpy(b->sig, b->out, 65);
    memset(&ia, 0, sizeof(ia));
    ia.key = b->pub;
    ia.key_size = 64;
    ia.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    if (hsm_import_public_key(b->ver, &ia, &b->ref) != HSM_NO_ERROR) {
	Fail("public key import");
    }
}

static void
Teardown(Bench *b)
{
    hsm_close_session(b->sess);
    nftw(stateDir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
    EVP_CIPHER_CTX_free(b->cctx);
    EVP_CIPHER_free(b->gcm);
    EVP_CIPHER_free(b->cbc);
    EVP_MAC_CTX_free(b->mctx);
    EVP_MD_CTX_free(b->dctx);
    EVP_MD_free(b->sha256);
    EVP_PKEY_CTX_free(b->sctx);
    EVP_PKEY_CTX_free(b->vctx);
    EVP_PKEY_free(b->pkey);
}

/* ------------------------------------------------------------------ */
/* Measuring                                                            */
/* ------------------------------------------------------------------ */

/* ops/s of fn over about runSeconds. */
static double
Rate(Bench *b, OpFn fn, const char *name)
{
    double start = Now(), elapsed;
    long ops = 0, batch = 64, i;

    do {
	for (i = 0; i < batch; i++) {
	    if (!fn(b)) {
		fprintf(stderr, "bench_hsm: %s failed: %s\n", name,
			hsm_spps_last_error());
		exit(1);
	    }
	}
	ops += batch;
	elapsed = Now() - start;
    } while (elapsed < runSeconds);
    return ops / elapsed;
}

static int
CmpDouble(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    static const struct {
	const char *name;
	OpFn raw, hsm;
    } ops[] = {
	{"aes256gcm_enc_64B", RawGcm, HsmGcm},
	{"aes256cbc_enc_64B", RawCbc, HsmCbc},
	{"aes256cmac_64B", RawCmac, HsmCmac},
	{"sha256_64B", RawSha, HsmSha},
	{"ecdsa_p256_sign", RawSign, HsmSign},
	{"ecdsa_p256_verify", RawVerify, HsmVerify},
	{"ecdsa_p256_verify_keyref", RawVerify, HsmVerifyRef},
	{"rng_32B", RawRng, HsmRng},
    };
    const char *only = NULL;
    Bench b;
    size_t i;
    int r;

    for (r = 1; r < argc; r++) {
	if (strcmp(argv[r], "-t") == 0 && r + 1 < argc) {
	    runSeconds = atof(argv[++r]);
	} else if (strcmp(argv[r], "-o") == 0 && r + 1 < argc) {
	    only = argv[++r];
	} else {
	    fprintf(stderr, "usage: bench_hsm ?-t seconds? ?-o substring?\n");
	    return 2;
	}
    }
    Setup(&b);
    printf("# engine vs raw OpenSSL EVP, median of 3 runs of %.1f s each\n",
	    runSeconds);
    printf("%-26s %14s %14s %10s %10s %10s\n", "operation", "openssl ops/s",
	    "engine ops/s", "openssl us", "engine us", "added us");
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
	double raw[3], hsm[3], rawUs, hsmUs;

	if (only != NULL && strstr(ops[i].name, only) == NULL) {
	    continue;
	}
	/* Warm up both paths (first fetches, caches). */
	ops[i].raw(&b);
	ops[i].hsm(&b);
	for (r = 0; r < 3; r++) {
	    raw[r] = Rate(&b, ops[i].raw, ops[i].name);
	    hsm[r] = Rate(&b, ops[i].hsm, ops[i].name);
	}
	qsort(raw, 3, sizeof(double), CmpDouble);
	qsort(hsm, 3, sizeof(double), CmpDouble);
	rawUs = 1e6 / raw[1];
	hsmUs = 1e6 / hsm[1];
	printf("%-26s %14.0f %14.0f %10.3f %10.3f %10.3f\n", ops[i].name,
		raw[1], hsm[1], rawUs, hsmUs, hsmUs - rawUs);
	fflush(stdout);
    }
    Teardown(&b);
    return 0;
}
