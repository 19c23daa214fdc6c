/*
 * hsm_test.h --
 *
 *	Helpers for the engine's C unit tests (test_hsm_core.c,
 *	test_hsm_store.c): a private temporary state directory per test
 *	binary, and short forms of the API calls the tests repeat.  Included
 *	after unit.h by one test file each (the helpers are static).
 */

#ifndef SPPS_HSM_TEST_H
#define SPPS_HSM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hsm_api.h"
#include "hsm_fw.h"
#include "hsm_spps.h"
#include "plat.h"

/* The test binary's temporary root (removed at the end). */
static char testRoot[512];
static int testDirSerial;

/* Makes the temporary root: $TMPDIR or /tmp, spps-hsm-<name>-XXXXXX. */
static void
TestRootInit(const char *name)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0') {
	tmp = "/tmp";
    }
    snprintf(testRoot, sizeof(testRoot), "%s/spps-%s-XXXXXX", tmp, name);
    if (mkdtemp(testRoot) == NULL) {
	perror("mkdtemp");
	exit(2);
    }
}

static void
TestRootDone(void)
{
    PlatError err;

    if (testRoot[0] != '\0' && plat_remove_tree(testRoot, &err) != 0) {
	fprintf(stderr, "%s\n", err.msg);
    }
}

/* A new state directory name under the root (not created). */
static const char *
NewDir(char *buf, size_t len)
{
    snprintf(buf, len, "%s/hsm%d", testRoot, ++testDirSerial);
    return buf;
}

static hsm_hdl_t
Session(const char *dir)
{
    open_session_args_t a;
    hsm_hdl_t h = 0;
    hsm_err_t err;

    memset(&a, 0, sizeof(a));
    err = hsm_spps_open_session_at(dir, &a, &h);
    if (err != HSM_NO_ERROR && getenv("HSM_TEST_VERBOSE")) {
	fprintf(stderr, "open session %s: %s: %s\n", dir,
		hsm_spps_err_name(err), hsm_spps_last_error());
    }
    return h;
}

static hsm_err_t
KeyStore(hsm_hdl_t session, uint32_t id, uint32_t nonce, int create,
	uint16_t maxUpdates, hsm_hdl_t *ks)
{
    open_svc_key_store_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_store_identifier = id;
    a.authentication_nonce = nonce;
    a.max_updates_number = maxUpdates;
    a.flags = create ? HSM_SVC_KEY_STORE_FLAGS_CREATE : 0;
    return hsm_open_key_store_service(session, &a, ks);
}

static hsm_hdl_t
KeyMgmt(hsm_hdl_t ks)
{
    open_svc_key_management_args_t a;
    hsm_hdl_t h = 0;

    memset(&a, 0, sizeof(a));
    if (hsm_open_key_management_service(ks, &a, &h) != HSM_NO_ERROR) {
	fprintf(stderr, "open key management: %s\n", hsm_spps_last_error());
    }
    return h;
}

/* Generates a key; pub gets x || y for EC keys (room for 96 bytes). */
static hsm_err_t
Generate(hsm_hdl_t km, hsm_key_type_t type, uint16_t group,
	hsm_key_info_t info, uint8_t flags, uint32_t *id, uint8_t *pub)
{
    op_generate_key_args_t a;
    uint8_t scratch[96];
    uint16_t size = 0;

    switch (type) {
    case HSM_KEY_TYPE_ECDSA_NIST_P256:
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256:
	size = 64;
	break;
    case HSM_KEY_TYPE_ECDSA_NIST_P384:
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384:
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384:
	size = 96;
	break;
    default:
	size = 0;
    }
    memset(&a, 0, sizeof(a));
    a.key_identifier = id;
    a.out_size = size;
    a.flags = flags;
    a.key_type = type;
    a.key_group = group;
    a.key_info = info;
    a.out_key = pub ? pub : scratch;
    return hsm_generate_key(km, &a);
}

#define CREATE HSM_OP_KEY_GENERATION_FLAGS_CREATE
#define UPDATE HSM_OP_KEY_GENERATION_FLAGS_UPDATE
#define STRICT HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION

/* Wraps key bytes for hsm_manage_key: IV || AES-256-GCM(kek) || tag. */
static size_t
Wrap(const uint8_t *kek, const uint8_t *key, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n;

    RAND_bytes(out, 12);
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, out);
    EVP_EncryptUpdate(ctx, out + 12, &n, key, (int) len);
    EVP_EncryptFinal_ex(ctx, out + 12 + len, &n);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + 12 + len);
    EVP_CIPHER_CTX_free(ctx);
    return 12 + len + 16;
}

static hsm_err_t
Import(hsm_hdl_t km, uint8_t flags, uint32_t kek, hsm_key_type_t type,
	uint16_t group, hsm_key_info_t info, const uint8_t *wrapped,
	size_t wrappedLen, uint32_t *id)
{
    op_manage_key_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = id;
    a.kek_identifier = kek;
    a.input_size = (uint16_t) wrappedLen;
    a.flags = flags;
    a.key_type = type;
    a.key_group = group;
    a.key_info = info;
    a.input_data = (uint8_t *) wrapped;
    return hsm_manage_key(km, &a);
}

static hsm_err_t
Delete(hsm_hdl_t km, uint32_t id, int strict)
{
    op_manage_key_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_identifier = &id;
    a.flags = HSM_OP_MANAGE_KEY_FLAGS_DELETE
	    | (strict ? HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION : 0);
    return hsm_manage_key(km, &a);
}

static hsm_err_t
Group(hsm_hdl_t km, uint16_t group, uint8_t flags)
{
    op_manage_key_group_args_t a;

    memset(&a, 0, sizeof(a));
    a.key_group = group;
    a.flags = flags;
    return hsm_manage_key_group(km, &a);
}

/* Copies a key's secret bytes (through the firmware interface). */
typedef struct SecretCopy {
    uint8_t bytes[66];
    size_t len;
    hsm_key_info_t info;
    hsm_key_type_t type;
} SecretCopy;

static hsm_err_t
CopySecret(const HsmFwKey *key, void *ctx)
{
    SecretCopy *c = ctx;

    c->len = key->secretLen;
    memcpy(c->bytes, key->secret, key->secretLen);
    c->info = key->info;
    c->type = key->type;
    return HSM_NO_ERROR;
}

static hsm_err_t
KeySecret(hsm_hdl_t ks, uint32_t id, SecretCopy *c)
{
    memset(c, 0, sizeof(*c));
    return hsm_fw_key_use(ks, id, CopySecret, c);
}

/* 1 if the key store service finds the key. */
static int
HasKey(hsm_hdl_t ks, uint32_t id)
{
    SecretCopy c;
    hsm_err_t err = KeySecret(ks, id, &c);

    if (err != HSM_NO_ERROR && getenv("HSM_TEST_VERBOSE")) {
	fprintf(stderr, "HasKey 0x%08x: %s\n", (unsigned) id,
		hsm_spps_last_error());
    }
    return err == HSM_NO_ERROR;
}

/* Reads a whole file (malloc'ed) or returns NULL. */
static inline uint8_t *
Slurp(const char *path, size_t *len)
{
    uint8_t *data;
    PlatError err;

    if (plat_read_file(path, (size_t) 64 << 20, &data, len, &err) != 0) {
	return NULL;
    }
    return data;
}

static inline int
Spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL) {
	return -1;
    }
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

#endif /* SPPS_HSM_TEST_H */
