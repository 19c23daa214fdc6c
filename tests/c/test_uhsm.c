/*
 * test_uhsm.c --
 *
 *	Unit tests of the U-HSM role (generic/roles/role_uhsm.c) and Job
 *	Manager's own formats (generic/proto/proto_jm.c): provisioning and
 *	its UUIDs, keysets (random, derived, imported, another U-HSM's, every
 *	byte altered), JDC, project and settings round trips and tampering,
 *	and the whole OE side of the flow against a real M-HSM role and a
 *	simulated device: request, reply (good, from another M-HSM, for
 *	another request, altered), export, loading on the bound M-HSM only,
 *	programming a board, status and end status validation (CoCs, end
 *	certifiers), and what must fail when anything is changed; a reply
 *	refused by a U-HSM of another vendor root.  Runs with a private
 *	SPPS_HOME.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "unit.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_jm.h"
#include "roles/role_common.h"
#include "roles/role_mhsm.h"
#include "roles/role_uhsm.h"
#include "sim/sim.h"
#include "sim/sim_factory.h"

static char home[512];
static SimFactory *factory;
static SimBench *bench;
static uint8_t root[PROTO_P384_PUB];
static RoleMhsmVendor vendor;

static RoleHsm *hsmU, *hsmU2, *hsmU3, *hsmA, *hsmB;
static RoleUhsm *uhsm, *uhsm2, *uhsm3;
static RoleMhsm *mhsmA, *mhsmB;

#define DIE "M2S090TS"

static void
HomeInit(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(home, sizeof(home), "%s/spps-uhsm-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(home) == NULL) {
	perror("mkdtemp");
	exit(2);
    }
    setenv("SPPS_HOME", home, 1);
    unsetenv("SPPS_FACTORY");
}

static int
Certify(void *ctx, ProtoCert *cert, ProtoError *err)
{
    return sim_factory_certify(ctx, cert, err);
}

static int
SealDfk(void *ctx, const ProtoCert *cert, uint8_t **sealed, size_t *len,
	ProtoError *err)
{
    return sim_factory_seal_dfk_key(ctx, cert, sealed, len, err);
}

static RoleHsm *
OpenDir(const char *name)
{
    RoleHsm *h = NULL;
    ProtoError err;
    char *dir = plat_join(home, name);

    if (role_hsm_open_dir(dir, &h, &err) != 0) {
	fprintf(stderr, "role_hsm_open_dir %s: %s\n", dir, err.msg);
	exit(2);
    }
    free(dir);
    return h;
}

static void
WorldInit(void)
{
    ProtoError err;
    SimError serr;
    RoleFail why;
    int created;

    if (sim_factory_open(&factory, &err) != 0
	    || sim_factory_root(factory, root, &err) != 0) {
	fprintf(stderr, "factory: %s\n", err.msg);
	exit(2);
    }
    memcpy(vendor.root, root, sizeof(root));
    vendor.certify = Certify;
    vendor.sealDfkKey = SealDfk;
    vendor.ctx = factory;
    if (sim_bench_open(&bench, &serr) != 0) {
	fprintf(stderr, "bench: %s\n", serr.e.msg);
	exit(2);
    }
    hsmU = OpenDir("uhsm");
    hsmU2 = OpenDir("uhsm2");
    hsmU3 = OpenDir("uhsm3");
    hsmA = OpenDir("mhsmA");
    hsmB = OpenDir("mhsmB");
    if (role_uhsm_provision(hsmU, "1", "30", root, Certify, factory, &uhsm,
	    &why, &err) != 0
	    || role_uhsm_provision(hsmU2, "2", "31", root, Certify, factory,
		    &uhsm2, &why, &err) != 0
	    /* Another module with the same master key UUID (not its key). */
	    || role_uhsm_provision(hsmU3, "3", "30", root, Certify, factory,
		    &uhsm3, &why, &err) != 0
	    || role_mhsm_provision(hsmA, "10", ROLE_MHSM_KIND_STANDALONE,
		    &vendor, &created, &err) != 0
	    || role_mhsm_provision(hsmB, "11", ROLE_MHSM_KIND_STANDALONE,
		    &vendor, &created, &err) != 0
	    || role_mhsm_open(hsmA, NULL, &mhsmA, &err) != 0
	    || role_mhsm_open(hsmB, NULL, &mhsmB, &err) != 0) {
	fprintf(stderr, "provisioning: %s\n", err.msg);
	exit(2);
    }
}

static void
WorldDone(void)
{
    PlatError perr;

    role_mhsm_close(mhsmA);
    role_mhsm_close(mhsmB);
    role_uhsm_close(uhsm);
    role_uhsm_close(uhsm2);
    role_uhsm_close(uhsm3);
    role_hsm_close(hsmA);
    role_hsm_close(hsmB);
    role_hsm_close(hsmU);
    role_hsm_close(hsmU2);
    role_hsm_close(hsmU3);
    sim_bench_close(bench);
    sim_factory_close(factory);
    plat_remove_tree(home, &perr);
}

/* ------------------------------------------------------------------ */
/* Provisioning                                                         */
/* ------------------------------------------------------------------ */

static void
TestProvision(void)
{
    RoleUhsm *again = NULL;
    ProtoError err;
    RoleFail why;

    CHECK(strcmp(role_uhsm_uuid(uhsm), "1") == 0);
    CHECK(strcmp(role_uhsm_master_uuid(uhsm), "30") == 0);
    CHECK_EQ(proto_cert_verify(role_uhsm_cert(uhsm), PROTO_CERT_UHSM, root,
	    &err), 0);
    CHECK(strcmp(role_uhsm_cert(uhsm)->subject, "1") == 0);
    /* Opened again: the same identity. */
    CHECK_EQ(role_uhsm_open(hsmU, &again, &err), 1);
    if (again != NULL) {
	CHECK(memcmp(role_uhsm_cert(again)->signKey,
		role_uhsm_cert(uhsm)->signKey, PROTO_P384_PUB) == 0);
	role_uhsm_close(again);
    }
    /* A second provisioning with other UUIDs is refused. */
    CHECK_EQ(role_uhsm_provision(hsmU, "5", "30", root, Certify, factory,
	    &again, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_STATE);
    /* The same UUIDs again: the existing identity. */
    CHECK_EQ(role_uhsm_provision(hsmU, "1", "30", root, Certify, factory,
	    &again, &why, &err), 0);
    if (again != NULL) {
	CHECK(memcmp(role_uhsm_cert(again)->signKey,
		role_uhsm_cert(uhsm)->signKey, PROTO_P384_PUB) == 0);
	role_uhsm_close(again);
    }
    /* An HSM that is no U-HSM. */
    CHECK_EQ(role_uhsm_open(hsmA, &again, &err), 0);
}

/* ------------------------------------------------------------------ */
/* Keysets                                                              */
/* ------------------------------------------------------------------ */

static int
HasName(const JmKeyset *ks, const char *name)
{
    size_t i;

    for (i = 0; i < ks->nNames; i++) {
	if (strcmp(ks->names[i], name) == 0) {
	    return 1;
	}
    }
    return 0;
}

static uint8_t *
NewKeyset(RoleUhsm *u, const uint8_t *src, size_t srcLen,
	const ProtoNamedBytes *plain, size_t n, size_t *len)
{
    uint8_t *image = NULL;
    ProtoError err;
    RoleFail why;

    if (role_uhsm_keyset_create(u, src, srcLen, "source", plain, n, "test",
	    &image, len, &why, &err) != 0) {
	fprintf(stderr, "keyset: %s\n", err.msg);
	return NULL;
    }
    return image;
}

static void
TestKeysets(void)
{
    uint8_t *a, *b, *c, *foreign, *twin, kip[32], uek1[32];
    size_t aLen, bLen, cLen, fLen, tLen, i, refused = 0;
    ProtoNamedBytes plain[2];
    JmKeyset hdr;
    ProtoError err;
    RoleFail why;

    memset(kip, 0x11, sizeof(kip));
    memset(uek1, 0x22, sizeof(uek1));
    a = NewKeyset(uhsm, NULL, 0, NULL, 0, &aLen);
    CHECK(a != NULL);
    if (a == NULL) {
	return;
    }
    CHECK_EQ(role_uhsm_keyset_check(uhsm, a, aLen, "a", &hdr, &why, &err), 0);
    CHECK_EQ(hdr.nNames, 12);
    CHECK(!HasName(&hdr, "KIP") && HasName(&hdr, "UEK1")
	    && HasName(&hdr, "DPK_BASE"));
    CHECK(strcmp(hdr.masterUuid, "30") == 0 && strcmp(hdr.uhsmUuid, "1") == 0);
    jm_keyset_free(&hdr);
    /* No key appears in clear in the file. */
    plain[0].name = "KIP";
    plain[0].data = kip;
    plain[0].len = 32;
    plain[1].name = "UEK1";
    plain[1].data = uek1;
    plain[1].len = 32;
    b = NewKeyset(uhsm, a, aLen, plain, 2, &bLen);
    CHECK(b != NULL);
    if (b != NULL) {
	CHECK_EQ(role_uhsm_keyset_check(uhsm, b, bLen, "b", &hdr, &why, &err),
		0);
	CHECK_EQ(hdr.nNames, 13);
	CHECK(HasName(&hdr, "KIP"));
	jm_keyset_free(&hdr);
	for (i = 0; i + 32 <= bLen; i++) {
	    CHECK(memcmp(b + i, uek1, 32) != 0 && memcmp(b + i, kip, 32) != 0);
	}
    }
    /* Derivation: a keyset of another master key is refused as a source. */
    foreign = NewKeyset(uhsm2, NULL, 0, NULL, 0, &fLen);
    CHECK(foreign != NULL);
    c = NULL;
    CHECK_EQ(role_uhsm_keyset_create(uhsm, foreign, fLen, "foreign", NULL, 0,
	    "x", &c, &cLen, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_KEY);
    CHECK(strstr(err.msg, "master key UUID 31") != NULL);
    CHECK_EQ(role_uhsm_keyset_check(uhsm, foreign, fLen, "foreign", &hdr, &why,
	    &err), -1);
    CHECK_EQ(why, ROLE_FAIL_KEY);
    /* Same master key UUID, another module: its key does not unwrap. */
    twin = NewKeyset(uhsm3, NULL, 0, NULL, 0, &tLen);
    CHECK(twin != NULL);
    CHECK_EQ(role_uhsm_keyset_check(uhsm, twin, tLen, "twin", &hdr, &why,
	    &err), -1);
    CHECK_EQ(why, ROLE_FAIL_AUTH);
    /* Every byte altered, and every truncation: refused. */
    for (i = 0; i < aLen; i++) {
	a[i] ^= 0x01;
	if (role_uhsm_keyset_check(uhsm, a, aLen, "a", &hdr, &why, &err) != 0) {
	    refused++;
	} else {
	    jm_keyset_free(&hdr);
	}
	a[i] ^= 0x01;
    }
    CHECK_EQ(refused, aLen);
    for (refused = 0, i = 0; i < aLen; i += 13) {
	if (role_uhsm_keyset_check(uhsm, a, i, "a", &hdr, &why, &err) != 0) {
	    refused++;
	}
    }
    CHECK_EQ(refused, (aLen + 12) / 13);
    free(a);
    free(b);
    free(foreign);
    free(twin);
}

/* ------------------------------------------------------------------ */
/* JDC, project and settings files                                      */
/* ------------------------------------------------------------------ */

static void
MakeJdc(JmJdc *jdc, size_t fabric)
{
    ProtoError err;

    memset(jdc, 0, sizeof(*jdc));
    jdc->family = jm_strdup("SmartFusion2");
    jdc->die = jm_strdup(DIE);
    jdc->designName = jm_strdup("hello_world_sb");
    jdc->tool = jm_strdup("test");
    jdc->fabricLen = fabric;
    jdc->fabric = malloc(fabric);
    jm_generate_content("hello_world_sb", "fabric", jdc->fabric, fabric, &err);
    jdc->nEnvm = 1;
    jdc->envm = calloc(1, sizeof(JmClient));
    jdc->envm[0].name = jm_strdup("MyClient1");
    jdc->envm[0].size = 1024;
    jdc->envm[0].len = 512;
    jdc->envm[0].data = malloc(512);
    jm_generate_content("hello_world_sb", "envm", jdc->envm[0].data, 512, &err);
    jdc->nSecurity = 1;
    jdc->security = calloc(1, sizeof(JmNameValue));
    jdc->security[0].name = jm_strdup("factory_test");
    jdc->security[0].value = jm_strdup("protected");
}

static void
TestJdc(void)
{
    JmJdc jdc, back;
    uint8_t *image = NULL, *image2 = NULL;
    size_t len = 0, len2 = 0, i, refused = 0;
    ProtoError err;

    MakeJdc(&jdc, 4096);
    CHECK_EQ(jm_jdc_components(&jdc), JM_FEATURE_SECURITY | JM_FEATURE_FABRIC
	    | JM_FEATURE_ENVM);
    CHECK_EQ(jm_jdc_write(&jdc, &image, &len, &err), 0);
    CHECK_EQ(jm_jdc_read(image, len, "jdc", &back, &err), 0);
    CHECK(strcmp(back.die, DIE) == 0 && back.fabricLen == 4096
	    && memcmp(back.fabric, jdc.fabric, 4096) == 0 && back.nEnvm == 1
	    && back.envm[0].size == 1024 && back.envm[0].len == 512);
    /* Reproducible: the same input gives the same bytes. */
    CHECK_EQ(jm_jdc_write(&back, &image2, &len2, &err), 0);
    CHECK(len == len2 && memcmp(image, image2, len) == 0);
    jm_jdc_free(&back);
    for (i = 0; i < len; i++) {
	image[i] ^= 0x80;
	if (jm_jdc_read(image, len, "jdc", &back, &err) != 0) {
	    refused++;
	} else {
	    jm_jdc_free(&back);
	}
	image[i] ^= 0x80;
    }
    CHECK_EQ(refused, len);
    CHECK_EQ(jm_jdc_read(image, len - 1, "jdc", &back, &err), -1);
    CHECK(strstr(err.msg, "jdc") != NULL);
    free(image);
    free(image2);
    jm_jdc_free(&jdc);
}

static void
FillProject(JmProject *p)
{
    JmJdc jdc;
    ProtoError err;
    JmTask *t;
    size_t i;

    memset(p, 0, sizeof(*p));
    p->name = jm_strdup("MyProject");
    p->created = 1234;
    strcpy(p->uhsmUuid, "1");
    p->nData = 1;
    p->data = calloc(1, sizeof(JmProgData));
    p->data[0].name = jm_strdup("MyProgData0");
    p->data[0].jdcSource = jm_strdup("/x/hello_world_sb.jdc");
    MakeJdc(&jdc, 256);
    jm_jdc_write(&jdc, &p->data[0].jdc, &p->data[0].jdcLen, &err);
    jm_jdc_free(&jdc);
    proto_sha384(p->data[0].jdc, p->data[0].jdcLen, p->data[0].jdcDigest);
    p->data[0].keysetName = jm_strdup("MyKeySet.txt");
    p->data[0].keyset = NewKeyset(uhsm, NULL, 0, NULL, 0,
	    &p->data[0].keysetLen);
    p->data[0].nEnvmUpdates = 1;
    p->data[0].envmUpdates = calloc(1, sizeof(JmUpdate));
    p->data[0].envmUpdates[0].client = jm_strdup("MyClient1");
    p->data[0].envmUpdates[0].source = jm_strdup("/x/fw.hex");
    p->data[0].envmUpdates[0].data = calloc(1, 10);
    p->data[0].envmUpdates[0].len = 10;
    p->data[0].nBitstreams = 1;
    p->data[0].bitstreams = calloc(1, sizeof(JmBitstreamDef));
    p->data[0].bitstreams[0].name = jm_strdup("MyBistream");
    p->data[0].bitstreams[0].type = jm_strdup("MASTER");
    p->data[0].bitstreams[0].features = JM_FEATURE_SECURITY | JM_FEATURE_ENVM;
    p->data[0].bitstreams[0].protocol = jm_strdup("AUTH_CODE");
    p->data[0].bitstreams[0].keyMode = jm_strdup("KFPE");
    p->data[0].bitstreams[0].generateCoc = 1;
    p->data[0].bitstreams[0].nPerDevice = 1;
    p->data[0].bitstreams[0].perDevice = calloc(1, sizeof(char *));
    p->data[0].bitstreams[0].perDevice[0] = jm_strdup("UPK1");
    p->nJobs = 1;
    p->jobs = calloc(1, sizeof(JmJob));
    p->jobs[0].name = jm_strdup("MyProgJob");
    p->jobs[0].type = jm_strdup("FPExpress");
    p->jobs[0].nDevices = 1;
    p->jobs[0].devices = calloc(1, sizeof(JmDevice));
    p->jobs[0].devices[0].name = jm_strdup("MyDevice");
    p->jobs[0].devices[0].hwLocation = 1;
    p->jobs[0].devices[0].dataName = jm_strdup("MyProgData0");
    p->jobs[0].devices[0].bitstreamName = jm_strdup("MyBistream");
    /* One task in each state. */
    p->jobs[0].nTasks = 4;
    p->jobs[0].tasks = calloc(4, sizeof(JmTask));
    for (i = 0; i < 4; i++) {
	t = &p->jobs[0].tasks[i];
	t->name = malloc(16);
	snprintf(t->name, 16, "T%lu", (unsigned long) i);
	t->state = (JmTaskState) i;
	t->internal = i == 1;
	t->nTickets = 1;
	t->tickets = calloc(1, sizeof(JmTicket));
	t->tickets[0].name = jm_strdup("MyTicket1");
	t->tickets[0].device = jm_strdup("MyDevice");
	t->tickets[0].action = jm_strdup("PROGRAM");
	t->tickets[0].maxDevices = i == 2 ? PROTO_UNLIMITED : 2;
	if (i >= 1) {
	    memset(t->requestDigest, 0xA0 + (int) i, PROTO_DIGEST);
	    strcpy(t->mhsmUuid, "10");
	    t->requestFile = jm_strdup("/x/r.req");
	    t->requested = 5;
	}
	if (i >= 2) {
	    t->tickets[0].hasId = 1;
	    memset(t->tickets[0].id, 0x33, PROTO_TICKET_ID);
	    memset(t->replyDigest, 0x44, PROTO_DIGEST);
	    t->mhsmCert = *role_mhsm_cert(mhsmA);
	    memset(t->bindingNonce, 0x55, PROTO_NONCE);
	    t->replied = 6;
	}
	if (i == 3) {
	    t->jobFile = jm_strdup("/x/MyProgJob.job");
	    t->exported = 7;
	    memset(t->jobDigest, 0x66, PROTO_DIGEST);
	    t->nExported = 1;
	    t->exportedBs = calloc(1, sizeof(JmExportedBitstream));
	    t->exportedBs[0].dataName = jm_strdup("MyProgData0");
	    t->exportedBs[0].bitstreamName = jm_strdup("MyBistream");
	    t->exportedBs[0].wrappedKip = calloc(1, 60);
	    t->exportedBs[0].wrappedKipLen = 60;
	    t->nStatuses = 1;
	    t->statuses = calloc(1, sizeof(JmStatusRecord));
	    t->statuses[0].file = jm_strdup("/x/MyJobStatus");
	    t->statuses[0].sequence = 3;
	    t->statuses[0].valid = 1;
	    t->statuses[0].summary = jm_strdup("ok");
	    t->statuses[0].image = calloc(1, 5);
	    t->statuses[0].imageLen = 5;
	}
    }
}

static void
TestProject(void)
{
    JmProject p, back, copy;
    uint8_t key[32], other[32], *image = NULL, *image2 = NULL;
    size_t len = 0, len2 = 0, i, refused = 0;
    ProtoBuf b1, b2;
    ProtoError err;

    FillProject(&p);
    CHECK_EQ(role_mac_key(hsmU, "jm project v1", key, &err), 0);
    CHECK_EQ(role_mac_key(hsmU3, "jm project v1", other, &err), 0);
    CHECK(memcmp(key, other, 32) != 0);
    CHECK_EQ(jm_project_write(&p, key, &image, &len, &err), 0);
    CHECK_EQ(jm_project_read(image, len, "prj", key, &back, &err), 0);
    /* Round trip: the same encoding. */
    proto_buf_init(&b1);
    proto_buf_init(&b2);
    jm_project_encode(&p, &b1);
    jm_project_encode(&back, &b2);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    CHECK(back.jobs[0].tasks[2].tickets[0].maxDevices == PROTO_UNLIMITED);
    CHECK(back.jobs[0].tasks[3].state == JM_TASK_EXPORTED);
    CHECK_EQ(jm_project_copy(&back, &copy, &err), 0);
    proto_buf_free(&b2);
    proto_buf_init(&b2);
    jm_project_encode(&copy, &b2);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    jm_project_free(&copy);
    jm_project_free(&back);
    /* Another U-HSM's key, every flipped byte, a truncation: refused. */
    CHECK_EQ(jm_project_read(image, len, "prj", other, &back, &err), -1);
    for (i = 0; i < len; i += 7) {
	image[i] ^= 0x04;
	if (jm_project_read(image, len, "prj", key, &back, &err) != 0) {
	    refused++;
	} else {
	    jm_project_free(&back);
	}
	image[i] ^= 0x04;
    }
    CHECK_EQ(refused, (len + 6) / 7);
    CHECK_EQ(jm_project_read(image, len / 2, "prj", key, &back, &err), -1);
    /* The writer refuses what the reader would (an empty name). */
    free(p.jobs[0].tasks[0].tickets[0].name);
    p.jobs[0].tasks[0].tickets[0].name = jm_strdup("");
    CHECK_EQ(jm_project_write(&p, key, &image2, &len2, &err), 0);
    CHECK_EQ(jm_project_read(image2, len2, "prj", key, &back, &err), -1);
    CHECK(strstr(err.msg, "ticket") != NULL);
    free(image2);
    proto_buf_free(&b1);
    proto_buf_free(&b2);
    free(image);
    jm_project_free(&p);
    OPENSSL_cleanse(key, sizeof(key));
}

static void
TestSettings(void)
{
    JmSettings s, back;
    uint8_t key[32], other[32], *image = NULL;
    size_t len = 0, i, refused = 0;
    char *server = NULL;
    ProtoError err;

    memset(&s, 0, sizeof(s));
    s.server = jm_strdup("SJSOCPRGW7P1");
    strcpy(s.uhsmUuid, "1");
    strcpy(s.masterUuid, "30");
    strcpy(s.mhsmUuid, "10");
    s.keysetDir = jm_strdup("/home/oe/KeySet");
    s.updated = 99;
    CHECK_EQ(role_mac_key(hsmU, "jm settings v1", key, &err), 0);
    CHECK_EQ(role_mac_key(hsmU2, "jm settings v1", other, &err), 0);
    CHECK_EQ(jm_settings_write(&s, key, &image, &len, &err), 0);
    CHECK_EQ(jm_settings_server(image, len, "settings", &server, &err), 0);
    CHECK(server != NULL && strcmp(server, "SJSOCPRGW7P1") == 0);
    free(server);
    CHECK_EQ(jm_settings_read(image, len, "settings", key, &back, &err), 0);
    CHECK(strcmp(back.mhsmUuid, "10") == 0
	    && strcmp(back.keysetDir, "/home/oe/KeySet") == 0);
    jm_settings_free(&back);
    CHECK_EQ(jm_settings_read(image, len, "settings", other, &back, &err), -1);
    for (i = 0; i < len; i++) {
	image[i] ^= 0x10;
	if (jm_settings_read(image, len, "settings", key, &back, &err) != 0) {
	    refused++;
	} else {
	    jm_settings_free(&back);
	}
	image[i] ^= 0x10;
    }
    CHECK_EQ(refused, len);
    free(image);
    jm_settings_free(&s);
}

/* ------------------------------------------------------------------ */
/* The flow                                                             */
/* ------------------------------------------------------------------ */

typedef struct Task {
    ProtoCert mhsmCert;
    uint8_t requestDigest[PROTO_DIGEST];
    uint8_t bindingNonce[PROTO_NONCE];
    uint8_t ids[2][PROTO_TICKET_ID];
} Task;

static const char *const ticketNames[2] = {"MyTicket1", "MyTicket2"};
static const char *const ticketActions[2] = {"PROGRAM", "VERIFY"};

static uint8_t *
Request(RoleUhsm *u, const char *job, const char *mhsm, size_t *len,
	uint8_t digest[PROTO_DIGEST])
{
    ProtoRequest req;
    ProtoTicketSpec specs[2];
    ProtoError err;
    uint8_t *image = NULL;
    int i;

    memset(&req, 0, sizeof(req));
    for (i = 0; i < 2; i++) {
	specs[i].name = (char *) ticketNames[i];
	specs[i].device = "MyDevice";
	specs[i].action = (char *) ticketActions[i];
	specs[i].maxDevices = i == 0 ? 2 : PROTO_UNLIMITED;
    }
    req.jobName = (char *) job;
    req.taskName = "MyHSMTask";
    strcpy(req.mhsmUuid, mhsm);
    req.nTickets = 2;
    req.tickets = specs;
    if (role_uhsm_request(u, &req, &image, len, digest, &err) != 0) {
	fprintf(stderr, "request: %s\n", err.msg);
	return NULL;
    }
    return image;
}

static uint8_t *
Serve(RoleMhsm *m, const uint8_t *req, size_t reqLen, size_t *len)
{
    uint8_t *rep = NULL;
    ProtoError err;

    if (role_mhsm_serve_request(m, req, reqLen, "request", &rep, len, NULL,
	    NULL, &err) != 0) {
	fprintf(stderr, "serve: %s\n", err.msg);
	return NULL;
    }
    return rep;
}

/* Export inputs for one MASTER bitstream from a JDC and keyset. */
typedef struct Export {
    JmJdc jdc;
    ProtoNamedBytes envm, sec;
    ProtoJobDevice dev;
    ProtoBitstream bs;
    ProtoJobTicket tickets[2];
    RoleExportBitstream in;
    size_t ticketBs[2];
    ProtoJob job;
} Export;

static char *perDevice[] = {"UPK1"};

static void
ExportPrepare(Export *x, const Task *t, const char *job, const char *mhsm,
	const uint8_t *keyset, size_t keysetLen)
{
    int i;

    memset(x, 0, sizeof(*x));
    MakeJdc(&x->jdc, 2048);
    x->in.body.fabric = x->jdc.fabric;
    x->in.body.fabricLen = x->jdc.fabricLen;
    x->envm.name = x->jdc.envm[0].name;
    x->envm.data = x->jdc.envm[0].data;
    x->envm.len = x->jdc.envm[0].len;
    x->in.body.envm = &x->envm;
    x->in.body.nEnvm = 1;
    x->sec.name = x->jdc.security[0].name;
    x->sec.data = (uint8_t *) x->jdc.security[0].value;
    x->sec.len = strlen(x->jdc.security[0].value);
    x->in.body.security = &x->sec;
    x->in.body.nSecurity = 1;
    x->in.keyset = keyset;
    x->in.keysetLen = keysetLen;
    x->in.keysetWhat = "keyset";
    x->in.programKeys = 1;
    x->in.perDevice = perDevice;
    x->in.nPerDevice = 1;
    x->bs.name = "MyBistream";
    x->bs.type = "MASTER";
    x->bs.family = x->jdc.family;
    x->bs.die = x->jdc.die;
    x->bs.designName = x->jdc.designName;
    x->bs.features = "SECURITY FABRIC ENVM";
    x->bs.protocol = "AUTH_CODE";
    x->bs.keyMode = "KFPE";
    x->bs.generateCoc = 1;
    x->dev.name = "MyDevice";
    x->dev.hwLocation = 1;
    x->dev.family = x->jdc.family;
    x->dev.die = x->jdc.die;
    x->dev.bitstream = "MyBistream";
    for (i = 0; i < 2; i++) {
	memcpy(x->tickets[i].id, t->ids[i], PROTO_TICKET_ID);
	x->tickets[i].name = (char *) ticketNames[i];
	x->tickets[i].device = "MyDevice";
	x->tickets[i].action = (char *) ticketActions[i];
	x->tickets[i].maxDevices = i == 0 ? 2 : PROTO_UNLIMITED;
	x->ticketBs[i] = 0;
    }
    x->job.jobName = (char *) job;
    x->job.taskName = "MyHSMTask";
    x->job.jobType = "FPExpress";
    strcpy(x->job.mhsmUuid, mhsm);
    memcpy(x->job.requestDigest, t->requestDigest, PROTO_DIGEST);
    memcpy(x->job.bindingNonce, t->bindingNonce, PROTO_NONCE);
    x->job.nDevices = 1;
    x->job.devices = &x->dev;
    x->job.nBitstreams = 1;
    x->job.bitstreams = &x->bs;
    x->job.nTickets = 2;
    x->job.tickets = x->tickets;
}

static void
ExportFree(Export *x)
{
    free(x->bs.cipher);
    free(x->job.sealedSecrets);
    free(x->in.newWrappedKip);
    jm_jdc_free(&x->jdc);
}

/* Programs the board on prg with ticket k of job (decoded), as FPE does. */
static int
RunAction(RoleMhsm *m, const char *prg, const ProtoJob *job, size_t k)
{
    SimSession *s = NULL;
    SimError serr;
    ProtoError err;
    uint8_t challenge[PROTO_NONCE], *answer = NULL, *code = NULL, *coc = NULL;
    size_t answerLen, codeLen, cocLen;
    RoleMhsmDevice dev;
    RoleMhsmCode info;
    char die[32];
    int rc = -1;

    err.msg[0] = serr.e.msg[0] = '\0';
    /* The job names the die as the JDC does (M2S090TS); devices report
     * the canonical die, as FlashPro Express compares them. */
    if (sim_die_canon(job->devices[0].die, die) != 0) {
	return -1;
    }
    if (sim_session_open(bench, prg, &s, NULL, &serr) != 0) {
	goto done;
    }
    if (role_mhsm_challenge(m, challenge, &err) != 0
	    || sim_session_authenticate(s, challenge, &answer, &answerLen,
		    &serr) != 0
	    || role_mhsm_authenticate(m, challenge, answer, answerLen,
		    die, &dev, &err) != 0
	    || role_mhsm_issue_code(m, challenge, job->tickets[k].id, &code,
		    &codeLen, &info, &err) != 0
	    || sim_session_run(s, job->tickets[k].action, code, codeLen,
		    &job->bitstreams[0], &coc, &cocLen, NULL, &serr) != 0
	    || role_mhsm_confirm(m, job->tickets[k].id, coc, cocLen, &info,
		    &err) != 0) {
	goto done;
    }
    rc = 0;

  done:
    if (rc != 0) {
	fprintf(stderr, "  action: %s / %s\n", err.msg, serr.e.msg);
    }
    free(answer);
    free(code);
    free(coc);
    sim_session_close(s);
    return rc;
}

static void
StatusTask(const Task *t, RoleStatusTicket rt[2], RoleStatusBitstream *rb,
	const uint8_t *digest, const uint8_t *wrapped, size_t wrappedLen)
{
    int i;

    for (i = 0; i < 2; i++) {
	rt[i].id = t->ids[i];
	rt[i].name = ticketNames[i];
	rt[i].device = "MyDevice";
	rt[i].action = ticketActions[i];
	rt[i].maxDevices = i == 0 ? 2 : PROTO_UNLIMITED;
	rt[i].bitstream = 0;
    }
    rb->name = "MyBistream";
    rb->designDigest = digest;
    rb->wrappedKip = wrapped;
    rb->wrappedKipLen = wrappedLen;
}

static void
TestFlow(void)
{
    uint8_t *keyset, *req, *rep, *repB, *req2, *rep2, *img = NULL, *img2 = NULL,
	    *st = NULL, *st2 = NULL;
    size_t ksLen, reqLen, repLen, repBLen, req2Len, rep2Len, imgLen, img2Len,
	    stLen, st2Len, i, shared, refused;
    uint8_t digest[PROTO_DIGEST], digest2[PROTO_DIGEST], otherDigest[PROTO_DIGEST];
    char *names[2] = {"MyTicket1", "MyTicket2"}, *badNames[2] = {"MyTicket1",
	    "Other"};
    ProtoReply reply;
    ProtoJob loaded, loadedB;
    ProtoError err;
    RoleFail why;
    RoleStatusTicket rt[2];
    RoleStatusBitstream rb;
    RoleStatusResult res;
    Export x, x2;
    Task t;
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN];
    SimProgrammer p;
    SimError serr;

    keyset = NewKeyset(uhsm, NULL, 0, NULL, 0, &ksLen);
    req = Request(uhsm, "MyProgJob", "10", &reqLen, digest);
    CHECK(keyset != NULL && req != NULL);
    if (keyset == NULL || req == NULL) {
	return;
    }
    /* The request is what the M-HSM's reader accepts. */
    {
	ProtoRequest back;
	uint8_t d2[PROTO_DIGEST];

	CHECK_EQ(proto_request_read(req, reqLen, "req", root, &back, d2, &err),
		0);
	CHECK(memcmp(d2, digest, PROTO_DIGEST) == 0);
	CHECK(strcmp(back.uhsmUuid, "1") == 0 && strcmp(back.mhsmUuid, "10") == 0
		&& back.nTickets == 2);
	proto_request_free(&back);
    }
    rep = Serve(mhsmA, req, reqLen, &repLen);
    CHECK(rep != NULL);
    if (rep == NULL) {
	return;
    }
    /* Good reply. */
    CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "10",
	    "MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err), 0);
    memset(&t, 0, sizeof(t));
    t.mhsmCert = reply.mhsmCert;
    memcpy(t.requestDigest, digest, PROTO_DIGEST);
    memcpy(t.bindingNonce, reply.bindingNonce, PROTO_NONCE);
    memcpy(t.ids[0], reply.tickets[0].id, PROTO_TICKET_ID);
    memcpy(t.ids[1], reply.tickets[1].id, PROTO_TICKET_ID);
    proto_reply_free(&reply);
    /* The wrong expectations. */
    CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "11",
	    "MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_MHSM);
    memset(otherDigest, 0x5A, sizeof(otherDigest));
    CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", otherDigest, "10",
	    "MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_REQUEST);
    CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "10",
	    "MyProgJob", "MyHSMTask", badNames, 2, &reply, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_MISMATCH);
    CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "10",
	    "OtherJob", "MyHSMTask", names, 2, &reply, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_REQUEST);
    /* Every byte altered: refused. */
    for (refused = 0, i = 0; i < repLen; i++) {
	rep[i] ^= 0x02;
	if (role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "10",
		"MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err) != 0) {
	    refused++;
	} else {
	    proto_reply_free(&reply);
	}
	rep[i] ^= 0x02;
    }
    CHECK_EQ(refused, repLen);
    /* A reply from M-HSM 11 to a request made for it, used for ours. */
    req2 = Request(uhsm, "MyProgJob", "11", &req2Len, digest2);
    repB = Serve(mhsmB, req2, req2Len, &repBLen);
    CHECK(repB != NULL);
    CHECK_EQ(role_uhsm_reply_check(uhsm, repB, repBLen, "repB", digest, "10",
	    "MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_MHSM);
    /* M-HSM 11 refuses a request made for 10. */
    rep2 = NULL;
    CHECK(role_mhsm_serve_request(mhsmB, req, reqLen, "request", &rep2,
	    &rep2Len, NULL, NULL, &err) != 0);
    free(rep2);

    /* Export, load on the bound M-HSM only. */
    ExportPrepare(&x, &t, "MyProgJob", "10", keyset, ksLen);
    CHECK_EQ(role_uhsm_export(uhsm, &x.job, &t.mhsmCert, &x.in, x.ticketBs,
	    &img, &imgLen, &why, &err), 0);
    if (img == NULL) {
	fprintf(stderr, "export: %s\n", err.msg);
	return;
    }
    CHECK(x.in.newWrappedKip != NULL);
    CHECK_EQ(x.in.body.nKeys, 0);	/* the caller's body is as given */
    CHECK_EQ(role_mhsm_load_job(mhsmB, img, imgLen, "job", &loadedB, &shared,
	    &err), ROLE_MHSM_WRONG_HSM);
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &loaded, &shared,
	    &err), 0);
    /* Re-export with the first KIP: same design digest; a change refused. */
    ExportPrepare(&x2, &t, "MyProgJob", "10", keyset, ksLen);
    x2.in.wrappedKip = x.in.newWrappedKip;
    x2.in.wrappedKipLen = x.in.newWrappedKipLen;
    x2.in.expectDigest = x.bs.designDigest;
    CHECK_EQ(role_uhsm_export(uhsm, &x2.job, &t.mhsmCert, &x2.in, x2.ticketBs,
	    &img2, &img2Len, &why, &err), 0);
    CHECK(memcmp(x2.bs.designDigest, x.bs.designDigest, PROTO_DIGEST) == 0);
    free(img2);
    img2 = NULL;
    free(x2.bs.cipher);
    x2.bs.cipher = NULL;
    free(x2.job.sealedSecrets);
    x2.job.sealedSecrets = NULL;
    free(x2.in.newWrappedKip);
    x2.in.newWrappedKip = NULL;
    x2.jdc.envm[0].data[0] ^= 1;
    CHECK_EQ(role_uhsm_export(uhsm, &x2.job, &t.mhsmCert, &x2.in, x2.ticketBs,
	    &img2, &img2Len, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_MISMATCH);
    ExportFree(&x2);

    /* Program a board; the status validates, CoC included. */
    CHECK_EQ(sim_programmer_add(bench, NULL, "FlashPro5", &p, &serr), 0);
    strcpy(prg, p.name);
    CHECK_EQ(sim_board_insert(bench, prg, DIE, NULL, dsn, NULL, &serr), 0);
    CHECK_EQ(RunAction(mhsmA, prg, &loaded, 0), 0);
    CHECK_EQ(RunAction(mhsmA, prg, &loaded, 1), 0);
    CHECK_EQ(role_mhsm_status(mhsmA, &loaded, ROLE_MHSM_STATUS, &st, &stLen,
	    NULL, &err), 0);
    StatusTask(&t, rt, &rb, x.bs.designDigest, x.in.newWrappedKip,
	    x.in.newWrappedKipLen);
    CHECK_EQ(role_uhsm_status_check(uhsm, st, stLen, "st", &t.mhsmCert,
	    t.requestDigest, "MyProgJob", "MyHSMTask", rt, 2, &rb, 1, &res, &why,
	    &err), 0);
    CHECK(res.allValid);
    CHECK_EQ(res.status.nCocs, 2);
    CHECK(!res.status.isEnd);
    role_uhsm_status_result_free(&res);
    /* A KIP of another bitstream or another design: CoCs INVALID. */
    {
	uint8_t wrongDigest[PROTO_DIGEST];

	memset(wrongDigest, 7, sizeof(wrongDigest));
	StatusTask(&t, rt, &rb, wrongDigest, x.in.newWrappedKip,
		x.in.newWrappedKipLen);
	CHECK_EQ(role_uhsm_status_check(uhsm, st, stLen, "st", &t.mhsmCert,
		t.requestDigest, "MyProgJob", "MyHSMTask", rt, 2, &rb, 1, &res,
		&why, &err), 0);
	CHECK(!res.allValid && !res.coc[0].valid);
	CHECK(strstr(res.coc[0].why, "another design") != NULL);
	role_uhsm_status_result_free(&res);
    }
    /* The M-HSM key of another M-HSM: the file is refused. */
    CHECK_EQ(role_uhsm_status_check(uhsm, st, stLen, "st",
	    role_mhsm_cert(mhsmB), t.requestDigest, "MyProgJob", "MyHSMTask",
	    rt, 2, &rb, 1, &res, &why, &err), -1);
    CHECK_EQ(why, ROLE_FAIL_AUTH);
    /* Another task's request digest. */
    CHECK_EQ(role_uhsm_status_check(uhsm, st, stLen, "st", &t.mhsmCert,
	    otherDigest, "MyProgJob", "MyHSMTask", rt, 2, &rb, 1, &res, &why,
	    &err), -1);
    CHECK_EQ(why, ROLE_FAIL_REQUEST);
    /* Every byte altered. */
    StatusTask(&t, rt, &rb, x.bs.designDigest, x.in.newWrappedKip,
	    x.in.newWrappedKipLen);
    for (refused = 0, i = 0; i < stLen; i += 3) {
	st[i] ^= 0x20;
	if (role_uhsm_status_check(uhsm, st, stLen, "st", &t.mhsmCert,
		t.requestDigest, "MyProgJob", "MyHSMTask", rt, 2, &rb, 1, &res,
		&why, &err) != 0) {
	    refused++;
	} else {
	    role_uhsm_status_result_free(&res);
	}
	st[i] ^= 0x20;
    }
    CHECK_EQ(refused, (stLen + 2) / 3);

    /* Terminate: the end status with its certifiers validates. */
    CHECK_EQ(role_mhsm_status(mhsmA, &loaded, ROLE_MHSM_TERMINATE, &st2,
	    &st2Len, NULL, &err), 0);
    CHECK_EQ(role_uhsm_status_check(uhsm, st2, st2Len, "end", &t.mhsmCert,
	    t.requestDigest, "MyProgJob", "MyHSMTask", rt, 2, &rb, 1, &res, &why,
	    &err), 0);
    CHECK(res.allValid && res.status.isEnd);
    CHECK_EQ(res.status.nCertifiers, 2);
    CHECK_EQ(res.nMissing, 0);
    role_uhsm_status_result_free(&res);
    /* An end status for a task with a ticket it does not certify. */
    {
	RoleStatusTicket rt3[3];
	uint8_t extra[PROTO_TICKET_ID];

	memcpy(rt3, rt, sizeof(rt));
	memset(extra, 0x77, sizeof(extra));
	rt3[2] = rt[0];
	rt3[2].id = extra;
	rt3[2].name = "MyTicket3";
	CHECK_EQ(role_uhsm_status_check(uhsm, st2, st2Len, "end", &t.mhsmCert,
		t.requestDigest, "MyProgJob", "MyHSMTask", rt3, 3, &rb, 1, &res,
		&why, &err), 0);
	CHECK(!res.allValid && res.nMissing == 1);
	role_uhsm_status_result_free(&res);
    }

    proto_job_free(&loaded);
    ExportFree(&x);
    free(img);
    free(st);
    free(st2);
    free(keyset);
    free(req);
    free(rep);
    free(req2);
    free(repB);
}

/*
 * TestForeignVendor --
 *	A U-HSM trusts the M-HSMs of the vendor root it pinned at
 *	provisioning, and no other: a good reply of a genuine M-HSM, seen by a
 *	U-HSM of another vendor (another simulated factory), is refused for
 *	its certificate (ROLE_FAIL_CERT) before anything else is looked at.
 */
static void
TestForeignVendor(void)
{
    SimFactory *other = NULL;
    uint8_t otherRoot[PROTO_P384_PUB], digest[PROTO_DIGEST], *req, *rep;
    size_t reqLen, repLen;
    char *dir = plat_join(home, "factory-other"), *names[2] = {"MyTicket1",
	    "MyTicket2"};
    RoleHsm *hsmX;
    RoleUhsm *uhsmX = NULL;
    ProtoReply reply;
    ProtoError err;
    RoleFail why;

    setenv("SPPS_FACTORY", dir, 1);
    CHECK_EQ(sim_factory_open(&other, &err), 0);
    unsetenv("SPPS_FACTORY");
    free(dir);
    if (other == NULL) {
	return;
    }
    CHECK_EQ(sim_factory_root(other, otherRoot, &err), 0);
    CHECK(memcmp(otherRoot, root, sizeof(root)) != 0);
    hsmX = OpenDir("uhsm-other-vendor");
    CHECK_EQ(role_uhsm_provision(hsmX, "4", "34", otherRoot, Certify, other,
	    &uhsmX, &why, &err), 0);
    req = Request(uhsm, "MyProgJob", "10", &reqLen, digest);
    rep = req != NULL ? Serve(mhsmA, req, reqLen, &repLen) : NULL;
    CHECK(rep != NULL);
    if (rep != NULL && uhsmX != NULL) {
	/* The U-HSM of our vendor takes it... */
	CHECK_EQ(role_uhsm_reply_check(uhsm, rep, repLen, "rep", digest, "10",
		"MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err), 0);
	proto_reply_free(&reply);
	/* ...the other vendor's does not. */
	CHECK_EQ(role_uhsm_reply_check(uhsmX, rep, repLen, "rep", digest,
		"10", "MyProgJob", "MyHSMTask", names, 2, &reply, &why, &err),
		-1);
	CHECK_EQ(why, ROLE_FAIL_CERT);
	CHECK(strstr(err.msg, "vendor root") != NULL);
    }
    free(req);
    free(rep);
    if (uhsmX != NULL) {
	role_uhsm_close(uhsmX);
    }
    role_hsm_close(hsmX);
    sim_factory_close(other);
}

int
main(void)
{
    HomeInit();
    WorldInit();
    UNIT_RUN(TestProvision);
    UNIT_RUN(TestKeysets);
    UNIT_RUN(TestJdc);
    UNIT_RUN(TestProject);
    UNIT_RUN(TestSettings);
    UNIT_RUN(TestFlow);
    UNIT_RUN(TestForeignVendor);
    WorldDone();
    return UNIT_DONE("uhsm");
}
