/*
 * test_role_common.c --
 *
 *	Unit tests of generic/roles/role_common.c: HSMs opened by server name
 *	(and names refused), firmware key stores, signatures checked with
 *	proto_verify_p384, ECDH between two HSM keys, wrap/unwrap and their
 *	refusals, MAC keys, blobs.  Runs with a private SPPS_HOME.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "plat.h"
#include "proto/proto.h"
#include "roles/role_common.h"

static char home[512];

static void
HomeInit(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(home, sizeof(home), "%s/spps-rolecommon-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(home) == NULL) {
	perror("mkdtemp");
	exit(2);
    }
    setenv("SPPS_HOME", home, 1);
}

static void
HomeDone(void)
{
    PlatError perr;

    plat_remove_tree(home, &perr);
}

/* A P-384 key of firmware store n of hsm. */
static int
NewKey(RoleHsm *hsm, uint16_t store, RoleKey *key, uint8_t pub[96])
{
    ProtoError err;

    key->hsm = hsm;
    if (role_key_store_open(hsm, store, &key->keyStore, &err) != 0
	    || role_key_generate(hsm, key->keyStore,
		HSM_KEY_TYPE_ECDSA_NIST_P384, &key->keyId, pub, 96,
		&err) != 0) {
	fprintf(stderr, "NewKey: %s\n", err.msg);
	return -1;
    }
    return 0;
}

static void
TestServerNames(void)
{
    static const char *const bad[] = {
	"", "../x", "..", ".", "a/b", "a\\b", ".hidden", "-x", "_x", "a b",
	"a:b", "x\n", "caf\xc3\xa9",
	"12345678901234567890123456789012345678901234567890123456789012345",
	NULL
    };
    static const char *const good[] = {
	"SJSOCPRGW7P1", "localhost", "10.0.0.1", "a", "hsm-1.example_com",
	"1234567890123456789012345678901234567890123456789012345678901234",
	NULL
    };
    RoleHsm *hsm;
    ProtoError err;
    int i;

    for (i = 0; bad[i] != NULL; i++) {
	CHECK(!role_server_name_valid(bad[i]));
	hsm = NULL;
	CHECK(role_hsm_open(bad[i], &hsm, &err) == -1);
	CHECK(hsm == NULL);
	CHECK(strstr(err.msg, "invalid HSM server name") != NULL);
    }
    CHECK(!role_server_name_valid(NULL));
    CHECK(strstr((role_hsm_open("../x", &hsm, &err), err.msg), "'../x'")
	    != NULL);
    for (i = 0; good[i] != NULL; i++) {
	CHECK(role_server_name_valid(good[i]));
    }
    /* Nothing was created outside $SPPS_HOME/hsm. */
    {
	char path[700];

	snprintf(path, sizeof(path), "%s/x", home);
	CHECK(!plat_file_exists(path));
    }
}

static void
TestOpen(void)
{
    RoleHsm *hsm = NULL;
    ProtoError err;
    char path[700];

    CHECK(role_hsm_open("SJSOCPRGW7P1", &hsm, &err) == 0);
    if (hsm == NULL) {
	fprintf(stderr, "%s\n", err.msg);
	return;
    }
    snprintf(path, sizeof(path), "%s/hsm/SJSOCPRGW7P1", home);
    CHECK(strcmp(hsm->dir, path) == 0);
    CHECK(strcmp(hsm->serverName, "SJSOCPRGW7P1") == 0);
    snprintf(path, sizeof(path), "%s/hsm/SJSOCPRGW7P1/fuse", home);
    CHECK(plat_file_exists(path));
    role_hsm_close(hsm);
    role_hsm_close(NULL);
}

static void
TestSignVerify(void)
{
    RoleHsm *hsm = NULL;
    RoleKey key, again;
    ProtoError err;
    uint8_t pub[96], pub2[96], sig[96], sig2[96];
    static const uint8_t msg[] = "the job request";

    if (role_hsm_open("signer", &hsm, &err) != 0) {
	CHECK(0);
	return;
    }
    CHECK(NewKey(hsm, ROLE_FW_STORE_UHSM, &key, pub) == 0);
    CHECK(proto_p384_valid(pub));
    CHECK(role_sign(&key, msg, sizeof(msg), sig, &err) == 0);
    CHECK(proto_verify_p384(pub, msg, sizeof(msg), sig, &err) == 0);
    CHECK(proto_verify_p384(pub, msg, sizeof(msg) - 1, sig, &err) == -1);
    sig[5] ^= 1;
    CHECK(proto_verify_p384(pub, msg, sizeof(msg), sig, &err) == -1);
    /* Signatures are randomised, both verify. */
    CHECK(role_sign(&key, msg, sizeof(msg), sig2, &err) == 0);
    CHECK(proto_verify_p384(pub, msg, sizeof(msg), sig2, &err) == 0);
    /* An empty message signs too. */
    CHECK(role_sign(&key, NULL, 0, sig2, &err) == 0);
    CHECK(proto_verify_p384(pub, NULL, 0, sig2, &err) == 0);
    /* The public key is recovered from the store. */
    CHECK(role_key_public(&key, pub2, &err) == 0);
    CHECK_MEM(pub, pub2, 96);
    /* Unknown key: the engine's text and detail. */
    again = key;
    again.keyId ^= 0x5a5a5a5a;
    CHECK(role_sign(&again, msg, sizeof(msg), sig, &err) == -1);
    CHECK(strncmp(err.msg, "signature: ", 11) == 0);
    CHECK(strlen(err.msg) > 20);

    /* Keys survive a reopen: the generation was strict. */
    role_hsm_close(hsm);
    CHECK(role_hsm_open("signer", &hsm, &err) == 0);
    key.hsm = hsm;
    CHECK(role_key_store_open(hsm, ROLE_FW_STORE_UHSM, &key.keyStore,
	    &err) == 0);
    CHECK(role_key_public(&key, pub2, &err) == 0);
    CHECK_MEM(pub, pub2, 96);
    CHECK(role_sign(&key, msg, sizeof(msg), sig, &err) == 0);
    CHECK(proto_verify_p384(pub, msg, sizeof(msg), sig, &err) == 0);
    role_hsm_close(hsm);
}

static void
TestEcdh(void)
{
    RoleHsm *a = NULL, *b = NULL;
    RoleKey ka, kb, aes;
    ProtoError err;
    uint8_t pa[96], pb[96], s1[48], s2[48], bad[96];
    uint8_t *sealed = NULL, *pt = NULL;
    size_t sealedLen, ptLen;
    static const uint8_t secret[] = "the DFK-DB key";

    CHECK(role_hsm_open("ecdh-a", &a, &err) == 0);
    CHECK(role_hsm_open("ecdh-b", &b, &err) == 0);
    if (a == NULL || b == NULL) {
	role_hsm_close(a);
	role_hsm_close(b);
	return;
    }
    CHECK(NewKey(a, ROLE_FW_STORE_MHSM, &ka, pa) == 0);
    CHECK(NewKey(b, ROLE_FW_STORE_MHSM, &kb, pb) == 0);
    CHECK(role_ecdh(&ka, pb, s1, &err) == 0);
    CHECK(role_ecdh(&kb, pa, s2, &err) == 0);
    CHECK_MEM(s1, s2, 48);

    /* A peer off the curve is refused. */
    memcpy(bad, pb, 96);
    bad[95] ^= 1;
    CHECK(role_ecdh(&ka, bad, s1, &err) == -1);
    CHECK(strstr(err.msg, "not a valid P-384") != NULL);

    /* Sealed to b's key, opened with role_ecdh inside b. */
    CHECK(proto_seal_p384(pb, "dfk-db", NULL, 0, secret, sizeof(secret),
	    &sealed, &sealedLen, &err) == 0);
    CHECK(proto_open_p384(pb, "dfk-db", role_ecdh, &kb, NULL, 0, sealed,
	    sealedLen, &pt, &ptLen, &err) == 0);
    CHECK(pt != NULL && ptLen == sizeof(secret)
	    && memcmp(pt, secret, ptLen) == 0);
    free(pt);
    pt = NULL;
    /* a cannot open it. */
    CHECK(proto_open_p384(pb, "dfk-db", role_ecdh, &ka, NULL, 0, sealed,
	    sealedLen, &pt, &ptLen, &err) == -1);
    CHECK(pt == NULL);
    free(sealed);

    /* ECDH with an AES key is refused. */
    aes.hsm = a;
    aes.keyStore = ka.keyStore;
    CHECK(role_key_generate(a, ka.keyStore, HSM_KEY_TYPE_AES_256, &aes.keyId,
	    NULL, 0, &err) == 0);
    CHECK(role_ecdh(&aes, pb, s1, &err) == -1);
    CHECK(strstr(err.msg, "not a P-384") != NULL);
    role_hsm_close(a);
    role_hsm_close(b);
}

static void
TestWrap(void)
{
    RoleHsm *hsm = NULL, *other = NULL;
    RoleKey key, key2, okey;
    ProtoError err;
    uint8_t *w = NULL, *w2 = NULL, *pt = NULL;
    size_t wLen, w2Len, ptLen, i;
    static const uint8_t secret[32] = {1, 2, 3, 4, 5};
    static const uint8_t aad[] = "keyset 42";

    CHECK(role_hsm_open("wrapper", &hsm, &err) == 0);
    CHECK(role_hsm_open("other", &other, &err) == 0);
    if (hsm == NULL || other == NULL) {
	role_hsm_close(hsm);
	role_hsm_close(other);
	return;
    }
    key.hsm = hsm;
    CHECK(role_key_store_open(hsm, ROLE_FW_STORE_UHSM, &key.keyStore,
	    &err) == 0);
    CHECK(role_key_generate(hsm, key.keyStore, HSM_KEY_TYPE_AES_256,
	    &key.keyId, NULL, 0, &err) == 0);
    key2 = key;
    CHECK(role_key_generate(hsm, key.keyStore, HSM_KEY_TYPE_AES_256,
	    &key2.keyId, NULL, 0, &err) == 0);

    CHECK(role_wrap(&key, aad, sizeof(aad), secret, sizeof(secret), &w, &wLen,
	    &err) == 0);
    CHECK(wLen == 12 + 32 + 16);
    CHECK(memmem(w, wLen, secret, 5) == NULL);
    /* A second wrap has a fresh IV. */
    CHECK(role_wrap(&key, aad, sizeof(aad), secret, sizeof(secret), &w2,
	    &w2Len, &err) == 0);
    CHECK(w2Len == wLen && memcmp(w, w2, 12) != 0);
    free(w2);

    CHECK(role_unwrap(&key, aad, sizeof(aad), w, wLen, &pt, &ptLen, &err)
	    == 0);
    CHECK(ptLen == 32 && pt != NULL && memcmp(pt, secret, 32) == 0);
    free(pt);

    /* Every flipped byte, another key, other AAD, truncation: refused. */
    for (i = 0; i < wLen; i++) {
	w[i] ^= 0x40;
	pt = NULL;
	CHECK(role_unwrap(&key, aad, sizeof(aad), w, wLen, &pt, &ptLen, &err)
		== -1);
	CHECK(pt == NULL);
	w[i] ^= 0x40;
    }
    CHECK(strstr(err.msg, "unwrap") != NULL);
    CHECK(role_unwrap(&key2, aad, sizeof(aad), w, wLen, &pt, &ptLen, &err)
	    == -1);
    CHECK(role_unwrap(&key, aad, sizeof(aad) - 1, w, wLen, &pt, &ptLen,
	    &err) == -1);
    CHECK(role_unwrap(&key, aad, sizeof(aad), w, wLen - 1, &pt, &ptLen,
	    &err) == -1);
    CHECK(role_unwrap(&key, aad, sizeof(aad), w, 27, &pt, &ptLen, &err)
	    == -1);
    CHECK(strstr(err.msg, "truncated") != NULL);
    /* The same key id in another HSM is another key (or none). */
    okey = key;
    okey.hsm = other;
    CHECK(role_key_store_open(other, ROLE_FW_STORE_UHSM, &okey.keyStore,
	    &err) == 0);
    CHECK(role_unwrap(&okey, aad, sizeof(aad), w, wLen, &pt, &ptLen, &err)
	    == -1);
    /* Empty plaintext and empty AAD. */
    free(w);
    CHECK(role_wrap(&key, NULL, 0, NULL, 0, &w, &wLen, &err) == 0);
    CHECK(wLen == 28);
    CHECK(role_unwrap(&key, NULL, 0, w, wLen, &pt, &ptLen, &err) == 0);
    CHECK(ptLen == 0);
    free(pt);
    free(w);
    role_hsm_close(hsm);
    role_hsm_close(other);
}

static void
TestMacKeyAndBlobs(void)
{
    RoleHsm *a = NULL, *b = NULL;
    ProtoError err;
    uint8_t k1[32], k2[32], k3[32], k4[32];
    uint8_t *data = NULL;
    size_t len;
    int found = -1;

    CHECK(role_hsm_open("mac-a", &a, &err) == 0);
    CHECK(role_hsm_open("mac-b", &b, &err) == 0);
    if (a == NULL || b == NULL) {
	role_hsm_close(a);
	role_hsm_close(b);
	return;
    }
    CHECK(role_mac_key(a, "project", k1, &err) == 0);
    CHECK(role_mac_key(a, "project", k2, &err) == 0);
    CHECK(role_mac_key(a, "settings", k3, &err) == 0);
    CHECK(role_mac_key(b, "project", k4, &err) == 0);
    CHECK_MEM(k1, k2, 32);
    CHECK(memcmp(k1, k3, 32) != 0);
    CHECK(memcmp(k1, k4, 32) != 0);

    CHECK(role_blob_read(a, "tickets", &data, &len, &found, &err) == 0);
    CHECK(found == 0 && data == NULL);
    CHECK(role_blob_write(a, "tickets", (const uint8_t *) "abc", 3, &err)
	    == 0);
    CHECK(role_blob_read(a, "tickets", &data, &len, &found, &err) == 0);
    CHECK(found == 1 && len == 3 && data != NULL && memcmp(data, "abc", 3)
	    == 0);
    free(data);
    CHECK(role_blob_write(a, "../bad", (const uint8_t *) "abc", 3, &err)
	    == -1);
    CHECK(strstr(err.msg, "cannot write HSM record '../bad'") != NULL);
    role_hsm_close(a);
    role_hsm_close(b);
}

int
main(void)
{
    int rc;

    HomeInit();
    UNIT_RUN(TestServerNames);
    UNIT_RUN(TestOpen);
    UNIT_RUN(TestSignVerify);
    UNIT_RUN(TestEcdh);
    UNIT_RUN(TestWrap);
    UNIT_RUN(TestMacKeyAndBlobs);
    rc = UNIT_DONE("role_common");
    HomeDone();
    return rc;
}
