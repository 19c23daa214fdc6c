/*
 * test_factory.c --
 *
 *	Unit tests of the simulated factory (generic/sim/sim_factory.c): the
 *	root is stable across reopens, serials are unique across processes,
 *	certification and its refusals, the DFK-DB key sealed to an M-HSM and
 *	opened inside it, device secrets for dies with and without KFP, and
 *	the die table.  Runs with a private SPPS_HOME.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "unit.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_device.h"
#include "roles/role_common.h"
#include "sim/sim_factory.h"

static char home[512];

static void
HomeInit(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(home, sizeof(home), "%s/spps-factory-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(home) == NULL) {
	perror("mkdtemp");
	exit(2);
    }
    setenv("SPPS_HOME", home, 1);
    unsetenv("SPPS_FACTORY");
}

static void
HomeDone(void)
{
    PlatError perr;

    plat_remove_tree(home, &perr);
}

static SimFactory *
Open(void)
{
    SimFactory *f = NULL;
    ProtoError err;

    if (sim_factory_open(&f, &err) != 0) {
	fprintf(stderr, "sim_factory_open: %s\n", err.msg);
	return NULL;
    }
    return f;
}

/* An HSM key pair for a certificate (software keys are enough here). */
static void
NewPub(uint8_t pub[96], EVP_PKEY **keep)
{
    EVP_PKEY *k = NULL;
    ProtoError err;

    if (proto_p384_generate(&k, pub, &err) != 0) {
	memset(pub, 0, 96);
    }
    if (keep != NULL) {
	*keep = k;
    } else {
	EVP_PKEY_free(k);
    }
}

/* ProtoEcdhFn over a software key (the bench's, here). */
static int
SoftEcdh(void *ctx, const uint8_t peer[96], uint8_t shared[48],
	ProtoError *err)
{
    return proto_p384_ecdh(ctx, peer, shared, err);
}

static void
TestRootStable(void)
{
    SimFactory *f = Open(), *g;
    uint8_t r1[96], r2[96];
    ProtoError err;
    char path[700];

    if (f == NULL) {
	CHECK(0);
	return;
    }
    snprintf(path, sizeof(path), "%s/factory", home);
    CHECK(strcmp(sim_factory_dir(f), path) == 0);
    CHECK(sim_factory_root(f, r1, &err) == 0);
    CHECK(proto_p384_valid(r1));
    sim_factory_close(f);
    g = Open();
    CHECK(g != NULL);
    if (g != NULL) {
	CHECK(sim_factory_root(g, r2, &err) == 0);
	CHECK_MEM(r1, r2, 96);
	sim_factory_close(g);
    }
    /* SPPS_FACTORY points elsewhere: another vendor. */
    snprintf(path, sizeof(path), "%s/vendor2", home);
    setenv("SPPS_FACTORY", path, 1);
    g = Open();
    CHECK(g != NULL);
    if (g != NULL) {
	CHECK(strcmp(sim_factory_dir(g), path) == 0);
	CHECK(sim_factory_root(g, r2, &err) == 0);
	CHECK(memcmp(r1, r2, 96) != 0);
	sim_factory_close(g);
    }
    unsetenv("SPPS_FACTORY");
    /* No plaintext key bytes of the root in the factory's files: the
     * public key is public, the private scalar never leaves the engine
     * (checked by the engine's own tests); the record holds only ids. */
}

static void
TestCertify(void)
{
    SimFactory *f = Open();
    ProtoCert c, d;
    ProtoError err;
    uint8_t root[96], other[96];
    uint64_t serial;

    if (f == NULL) {
	CHECK(0);
	return;
    }
    sim_factory_root(f, root, &err);
    memset(&c, 0, sizeof(c));
    c.kind = PROTO_CERT_MHSM;
    strcpy(c.subject, "10");
    NewPub(c.signKey, NULL);
    NewPub(c.encKey, NULL);
    c.hasEncKey = 1;
    CHECK(sim_factory_certify(f, &c, &err) == 0);
    CHECK(c.serial >= 1 && c.issued > 1600000000u);
    CHECK(proto_cert_verify(&c, PROTO_CERT_MHSM, root, &err) == 0);
    /* Wrong kind, wrong root, tampered fields. */
    CHECK(proto_cert_verify(&c, PROTO_CERT_UHSM, root, &err) == -1);
    CHECK(strstr(err.msg, "is an M-HSM certificate, not a U-HSM "
	    "certificate") != NULL);
    NewPub(other, NULL);
    CHECK(proto_cert_verify(&c, PROTO_CERT_MHSM, other, &err) == -1);
    CHECK(strstr(err.msg, "not issued by the trusted vendor root") != NULL);
    d = c;
    strcpy(d.subject, "11");
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, root, &err) == -1);
    d = c;
    d.serial++;
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, root, &err) == -1);
    d = c;
    NewPub(d.encKey, NULL);
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, root, &err) == -1);
    serial = c.serial;

    /* Refusals, and none of them uses up a serial. */
#define REFUSED(setup, text)						\
    do {								\
	d = c;								\
	setup;								\
	CHECK(sim_factory_certify(f, &d, &err) == -1);			\
	CHECK(strstr(err.msg, text) != NULL);				\
	if (strstr(err.msg, text) == NULL) {				\
	    fprintf(stderr, "  got: %s\n", err.msg);			\
	}								\
    } while (0)
    REFUSED(d.kind = PROTO_CERT_ROOT, "another vendor root");
    REFUSED(d.kind = (ProtoCertKind) 9, "unknown kind");
    REFUSED(strcpy(d.subject, "010"), "'010' is not a UUID in canonical");
    REFUSED(strcpy(d.subject, "AB"), "not a UUID");
    REFUSED(strcpy(d.subject, ""), "not a UUID");
    REFUSED(d.hasEncKey = 0, "an M-HSM needs a sealing key");
    REFUSED((d.kind = PROTO_CERT_UHSM), "only an M-HSM has a sealing key");
    REFUSED(strcpy(d.die, "M2S090"), "an HSM has no die");
    REFUSED(d.signKey[95] ^= 1, "not a valid P-384 public key");
    REFUSED(d.encKey[0] ^= 1, "not a valid P-384 public key");
    REFUSED((d.kind = PROTO_CERT_DEVICE, d.hasEncKey = 0,
	    strcpy(d.subject, "0123456789abcdef0123456789ABCDEF"),
	    strcpy(d.die, "M2S090")), "is not a DSN");
    REFUSED((d.kind = PROTO_CERT_DEVICE, d.hasEncKey = 0,
	    strcpy(d.subject, "0123456789abcdef0123456789abcdef"),
	    strcpy(d.die, "M2S099")), "unknown die 'M2S099'");
    REFUSED((d.kind = PROTO_CERT_DEVICE, d.hasEncKey = 0,
	    strcpy(d.subject, "0123456789abcdef0123456789abcdef"),
	    strcpy(d.die, "M2S010")), "M2S010 has no factory key pair");
    REFUSED(memset(d.subject, 'a', sizeof(d.subject)), "not terminated");
#undef REFUSED
    /* A U-HSM and a device (die canonicalised). */
    d = c;
    d.kind = PROTO_CERT_UHSM;
    d.hasEncKey = 0;
    memset(d.encKey, 0, 96);
    strcpy(d.subject, "1");
    CHECK(sim_factory_certify(f, &d, &err) == 0);
    CHECK(d.serial == serial + 1);
    CHECK(proto_cert_verify(&d, PROTO_CERT_UHSM, root, &err) == 0);
    d.kind = PROTO_CERT_DEVICE;
    strcpy(d.subject, "0123456789abcdef0123456789abcdef");
    strcpy(d.die, "m2gl150ts");
    CHECK(sim_factory_certify(f, &d, &err) == 0);
    CHECK(strcmp(d.die, "M2GL150") == 0);
    CHECK(d.serial == serial + 2);
    CHECK(proto_cert_verify(&d, PROTO_CERT_DEVICE, root, &err) == 0);
    sim_factory_close(f);
}

/* Children certify at the same time; all serials must differ. */
static void
TestSerialsAcrossProcesses(void)
{
    enum { KIDS = 4, EACH = 5 };
    int fds[2], i, status;
    pid_t pids[KIDS];
    uint64_t serials[KIDS * EACH + 1];
    size_t n = 0, j, k;
    SimFactory *f = Open();

    /* The factory exists before the fork (its keys are made once). */
    if (f == NULL || pipe(fds) != 0) {
	CHECK(0);
	sim_factory_close(f);
	return;
    }
    sim_factory_close(f);
    for (i = 0; i < KIDS; i++) {
	pids[i] = fork();
	if (pids[i] == 0) {
	    SimFactory *g;
	    ProtoCert c;
	    ProtoError err;
	    int e, bad = 0;

	    close(fds[0]);
	    if ((g = Open()) == NULL) {
		_exit(3);
	    }
	    for (e = 0; e < EACH; e++) {
		memset(&c, 0, sizeof(c));
		c.kind = PROTO_CERT_UHSM;
		snprintf(c.subject, sizeof(c.subject), "%x", 100 + i * 10 + e);
		NewPub(c.signKey, NULL);
		if (sim_factory_certify(g, &c, &err) != 0) {
		    fprintf(stderr, "child: %s\n", err.msg);
		    bad = 1;
		    break;
		}
		if (write(fds[1], &c.serial, sizeof(c.serial))
			!= (ssize_t) sizeof(c.serial)) {
		    bad = 1;
		}
	    }
	    sim_factory_close(g);
	    _exit(bad);
	}
    }
    close(fds[1]);
    while (n < KIDS * EACH + 1
	    && read(fds[0], &serials[n], sizeof(serials[0]))
		== (ssize_t) sizeof(serials[0])) {
	n++;
    }
    close(fds[0]);
    for (i = 0; i < KIDS; i++) {
	CHECK(waitpid(pids[i], &status, 0) == pids[i]);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_EQ(n, KIDS * EACH);
    for (j = 0; j < n; j++) {
	for (k = j + 1; k < n; k++) {
	    CHECK(serials[j] != serials[k]);
	}
    }
}

static void
TestDfkKey(void)
{
    SimFactory *f = Open();
    RoleHsm *hsm = NULL;
    RoleKey seal, other;
    ProtoCert c, u;
    ProtoError err;
    uint8_t pub[96], opub[96], root[96], *sealed = NULL, *pt = NULL;
    uint8_t *sealed2 = NULL;
    size_t sealedLen, sealed2Len, ptLen;

    if (f == NULL || role_hsm_open("mhsm", &hsm, &err) != 0) {
	CHECK(0);
	sim_factory_close(f);
	return;
    }
    sim_factory_root(f, root, &err);
    seal.hsm = other.hsm = hsm;
    CHECK(role_key_store_open(hsm, ROLE_FW_STORE_MHSM, &seal.keyStore,
	    &err) == 0);
    other.keyStore = seal.keyStore;
    CHECK(role_key_generate(hsm, seal.keyStore, HSM_KEY_TYPE_ECDSA_NIST_P384,
	    &seal.keyId, pub, 96, &err) == 0);
    CHECK(role_key_generate(hsm, seal.keyStore, HSM_KEY_TYPE_ECDSA_NIST_P384,
	    &other.keyId, opub, 96, &err) == 0);
    memset(&c, 0, sizeof(c));
    c.kind = PROTO_CERT_MHSM;
    strcpy(c.subject, "10");
    memcpy(c.signKey, opub, 96);
    memcpy(c.encKey, pub, 96);
    c.hasEncKey = 1;
    CHECK(sim_factory_certify(f, &c, &err) == 0);
    CHECK(sim_factory_seal_dfk_key(f, &c, &sealed, &sealedLen, &err) == 0);
    CHECK(proto_open_p384(pub, "dfk-db", role_ecdh, &seal, NULL, 0, sealed,
	    sealedLen, &pt, &ptLen, &err) == 0);
    CHECK(pt != NULL && ptLen == 32);
    /* Sealed afresh each time, same key inside. */
    CHECK(sim_factory_seal_dfk_key(f, &c, &sealed2, &sealed2Len, &err) == 0);
    CHECK(sealed2Len == sealedLen && memcmp(sealed, sealed2, sealedLen) != 0);
    /* The other key of the HSM cannot open it. */
    {
	uint8_t *pt2 = NULL;
	size_t pt2Len;

	CHECK(proto_open_p384(pub, "dfk-db", role_ecdh, &other, NULL, 0,
		sealed2, sealed2Len, &pt2, &pt2Len, &err) == -1);
	CHECK(pt2 == NULL);
    }
    free(sealed2);
    sealed2 = NULL;
    /* The device FK derived from this key is what the factory gives a
     * device: checked in TestDeviceKeys through this key. */
    {
	uint8_t dsn[16] = {0xd5, 1, 2, 3}, fk[32], bench[96];
	EVP_PKEY *bk = NULL;
	uint8_t *sec = NULL, *plain = NULL;
	size_t secLen, plainLen;
	int hasKfp;
	ProtoCert kc;
	ProtoItem it;

	NewPub(bench, &bk);
	CHECK(sim_factory_device_keys(f, dsn, "M2S010", bench, &sec, &secLen,
		&hasKfp, &kc, &err) == 0);
	CHECK(hasKfp == 0);
	CHECK(proto_open_p384(bench, SIM_DEVICE_SECRETS_LABEL,
		SoftEcdh, bk, dsn, 16, sec, secLen,
		&plain, &plainLen, &err) == 0);
	CHECK(proto_hkdf(pt, 32, dsn, 16, "spps dfk v1", fk, 32) == 0);
	CHECK(plain != NULL && proto_find(plain, plainLen, 2, &it) == 1
		&& it.len == 32 && memcmp(it.val, fk, 32) == 0);
	proto_clear_free(plain, plainLen);
	free(sec);
	EVP_PKEY_free(bk);
    }
    proto_clear_free(pt, ptLen);

    /* Refused: a U-HSM certificate, a certificate of another vendor, a
     * tampered one. */
    u = c;
    u.kind = PROTO_CERT_UHSM;
    CHECK(sim_factory_seal_dfk_key(f, &u, &sealed2, &sealed2Len, &err) == -1);
    free(sealed2);
    sealed2 = NULL;
    CHECK(strstr(err.msg, "does not deliver the DFK-DB key") != NULL);
    u = c;
    u.serial++;
    CHECK(sim_factory_seal_dfk_key(f, &u, &sealed2, &sealed2Len, &err) == -1);
    CHECK(sealed2 == NULL);
    CHECK(strstr(err.msg, "not issued by the trusted vendor root") != NULL);
    free(sealed);
    role_hsm_close(hsm);
    sim_factory_close(f);
}

static void
TestDeviceKeys(void)
{
    SimFactory *f = Open();
    EVP_PKEY *bk = NULL, *kfp = NULL;
    uint8_t bench[96], root[96], dsn[16], pub[96], fk1[32];
    uint8_t *sec = NULL, *plain = NULL;
    size_t secLen, plainLen;
    int hasKfp = -1;
    ProtoCert kc;
    ProtoError err;
    ProtoItem it;
    char hex[33];

    if (f == NULL) {
	CHECK(0);
	return;
    }
    sim_factory_root(f, root, &err);
    NewPub(bench, &bk);
    proto_random(dsn, sizeof(dsn));
    proto_hex(dsn, 16, hex);

    /* A die with KFP, in the form users write. */
    CHECK(sim_factory_device_keys(f, dsn, "M2S090TS", bench, &sec, &secLen,
	    &hasKfp, &kc, &err) == 0);
    CHECK(hasKfp == 1);
    CHECK(kc.kind == PROTO_CERT_DEVICE && strcmp(kc.die, "M2S090") == 0);
    CHECK(strcmp(kc.subject, hex) == 0);
    CHECK(proto_cert_verify(&kc, PROTO_CERT_DEVICE, root, &err) == 0);
    CHECK(proto_open_p384(bench, SIM_DEVICE_SECRETS_LABEL,
	    SoftEcdh, bk, dsn, 16, sec, secLen, &plain,
	    &plainLen, &err) == 0);
    if (plain != NULL) {
	CHECK(proto_find(plain, plainLen, 1, &it) == 1 && it.len == 16
		&& memcmp(it.val, dsn, 16) == 0);
	CHECK(proto_find(plain, plainLen, 2, &it) == 1 && it.len == 32);
	memcpy(fk1, it.val, 32);
	CHECK(proto_find(plain, plainLen, 3, &it) == 1 && it.len == 48);
	CHECK(proto_p384_from_private(it.val, &kfp, &err) == 0);
	CHECK(kfp != NULL && proto_p384_public_bytes(kfp, pub) == 0);
	CHECK_MEM(pub, kc.signKey, 96);
	EVP_PKEY_free(kfp);
	/* It is the record proto_device.h reads. */
	{
	    ProtoDeviceSecrets ds;

	    CHECK(proto_device_secrets_decode(plain, plainLen, &ds, &err)
		    == 0);
	    CHECK(ds.hasKfp == 1 && memcmp(ds.dsn, dsn, 16) == 0
		    && memcmp(ds.fk, fk1, 32) == 0);
	    OPENSSL_cleanse(&ds, sizeof(ds));
	}
	proto_clear_free(plain, plainLen);
	plain = NULL;
    }
    /* Sealed with the DSN as AAD: another DSN does not open it. */
    {
	uint8_t dsn2[16];

	memcpy(dsn2, dsn, 16);
	dsn2[0] ^= 1;
	CHECK(proto_open_p384(bench, SIM_DEVICE_SECRETS_LABEL,
		SoftEcdh, bk, dsn2, 16, sec, secLen,
		&plain, &plainLen, &err) == -1);
    }
    free(sec);
    sec = NULL;

    /* The same DSN gets the same FK again (derived, not stored); a die
     * without KFP has no KFP and no certificate. */
    CHECK(sim_factory_device_keys(f, dsn, "M2GL025", bench, &sec, &secLen,
	    &hasKfp, &kc, &err) == 0);
    CHECK(hasKfp == 0 && kc.kind == 0 && kc.subject[0] == '\0');
    CHECK(proto_open_p384(bench, SIM_DEVICE_SECRETS_LABEL,
	    SoftEcdh, bk, dsn, 16, sec, secLen, &plain,
	    &plainLen, &err) == 0);
    if (plain != NULL) {
	CHECK(proto_find(plain, plainLen, 2, &it) == 1 && it.len == 32
		&& memcmp(it.val, fk1, 32) == 0);
	CHECK(proto_find(plain, plainLen, 3, &it) == 0);
	proto_clear_free(plain, plainLen);
    }
    free(sec);
    sec = NULL;

    /* Refusals. */
    CHECK(sim_factory_device_keys(f, dsn, "XC7A100T", bench, &sec, &secLen,
	    &hasKfp, &kc, &err) == -1);
    CHECK(strstr(err.msg, "no die 'XC7A100T'") != NULL && sec == NULL);
    bench[0] ^= 1;
    CHECK(sim_factory_device_keys(f, dsn, "MPF300T", bench, &sec, &secLen,
	    &hasKfp, &kc, &err) == -1);
    CHECK(strstr(err.msg, "bench key") != NULL && sec == NULL);
    EVP_PKEY_free(bk);
    sim_factory_close(f);
}

static void
TestDies(void)
{
    static const struct {
	const char *die, *family, *canon;
	int kfp;
    } cases[] = {
	{"M2S005", "SmartFusion2", "M2S005", 0},
	{"M2S010", "SmartFusion2", "M2S010", 0},
	{"M2S025T", "SmartFusion2", "M2S025", 0},
	{"M2S050TS", "SmartFusion2", "M2S050", 0},
	{"M2S060", "SmartFusion2", "M2S060", 1},
	{"M2S090TS", "SmartFusion2", "M2S090", 1},
	{"m2s150ts", "SmartFusion2", "M2S150", 1},
	{"M2GL005", "IGLOO2", "M2GL005", 0},
	{"M2GL010T", "IGLOO2", "M2GL010", 0},
	{"M2GL025", "IGLOO2", "M2GL025", 0},
	{"M2GL050", "IGLOO2", "M2GL050", 0},
	{"M2GL060TS", "IGLOO2", "M2GL060", 1},
	{"M2GL090", "IGLOO2", "M2GL090", 1},
	{"M2GL150", "IGLOO2", "M2GL150", 1},
	{"MPF050T", "PolarFire", "MPF050", 1},
	{"MPF100T", "PolarFire", "MPF100", 1},
	{"MPF200TS", "PolarFire", "MPF200", 1},
	{"MPF300T", "PolarFire", "MPF300", 1},
	{"MPF300TLS", "PolarFire", "MPF300", 1},
	{"MPF500", "PolarFire", "MPF500", 1},
	{"MPFS025T", "PolarFire SoC", "MPFS025", 1},
	{"MPFS095TS", "PolarFire SoC", "MPFS095", 1},
	{"MPFS160T", "PolarFire SoC", "MPFS160", 1},
	{"MPFS250T", "PolarFire SoC", "MPFS250", 1},
	{"MPFS460", "PolarFire SoC", "MPFS460", 1},
    };
    static const char *const unknown[] = {
	"", "M2S", "M2S091", "M2S090X", "M2S090TSX", "MPF300-1FCG1152",
	"MPF", "XC7A100T", "M2S0900", " M2S090", NULL
    };
    char canon[32];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const char *fam = sim_die_family(cases[i].die);

	CHECK(fam != NULL && strcmp(fam, cases[i].family) == 0);
	CHECK_EQ(sim_die_has_kfp(cases[i].die), cases[i].kfp);
	CHECK(sim_die_canon(cases[i].die, canon) == 0
		&& strcmp(canon, cases[i].canon) == 0);
    }
    for (i = 0; unknown[i] != NULL; i++) {
	CHECK(sim_die_family(unknown[i]) == NULL);
	CHECK(sim_die_has_kfp(unknown[i]) == 0);
	CHECK(sim_die_canon(unknown[i], canon) == -1 && canon[0] == '\0');
    }
    CHECK(sim_die_family(NULL) == NULL);
}

int
main(void)
{
    int rc;

    HomeInit();
    UNIT_RUN(TestDies);
    UNIT_RUN(TestRootStable);
    UNIT_RUN(TestCertify);
    UNIT_RUN(TestSerialsAcrossProcesses);
    UNIT_RUN(TestDfkKey);
    UNIT_RUN(TestDeviceKeys);
    rc = UNIT_DONE("factory");
    HomeDone();
    return rc;
}
