/*
 * test_mhsm.c --
 *
 *	Unit tests of the M-HSM role (generic/roles/role_mhsm.c) and the
 *	device side of the protocol (generic/proto/proto_device.c,
 *	generic/sim/sim_device.c): provisioning, requests and replays, jobs
 *	for the right and the wrong M-HSM, loading twice, the authenticity
 *	check, codes in each key mode, a code for another device, a replayed
 *	or altered code, a code for another action, an altered or foreign
 *	bitstream, VERIFY of another design, ERASE, KFP on a die without one,
 *	counters at zero and
 *	unlimited, a pulled board and its pending reservation, CoCs, end of
 *	job and its certifiers, tombstones.  A stand-in U-HSM (a P-384 key
 *	certified by the factory) makes requests and jobs as the U-HSM role
 *	would.  Runs with a private SPPS_HOME.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "unit.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_device.h"
#include "roles/role_common.h"
#include "roles/role_mhsm.h"
#include "sim/sim.h"
#include "sim/sim_factory.h"

static char home[512];
static SimFactory *factory;
static SimBench *bench;

/* The stand-in U-HSM. */
static RoleHsm *uhsm;
static RoleKey uhsmKey;
static ProtoCert uhsmCert;

/* Two M-HSMs. */
static RoleHsm *hsmA, *hsmB;
static RoleMhsm *mhsmA, *mhsmB;

static void
HomeInit(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(home, sizeof(home), "%s/spps-mhsm-XXXXXX",
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

static RoleMhsmVendor vendor;

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
    int created;

    if (sim_factory_open(&factory, &err) != 0
	    || sim_factory_root(factory, vendor.root, &err) != 0) {
	fprintf(stderr, "factory: %s\n", err.msg);
	exit(2);
    }
    vendor.certify = Certify;
    vendor.sealDfkKey = SealDfk;
    vendor.ctx = factory;
    if (sim_bench_open(&bench, &serr) != 0) {
	fprintf(stderr, "bench: %s\n", serr.e.msg);
	exit(2);
    }

    /* U-HSM 1: an identity key certified by the vendor. */
    uhsm = OpenDir("uhsm");
    uhsmKey.hsm = uhsm;
    memset(&uhsmCert, 0, sizeof(uhsmCert));
    uhsmCert.kind = PROTO_CERT_UHSM;
    strcpy(uhsmCert.subject, "1");
    if (role_key_store_open(uhsm, ROLE_FW_STORE_UHSM, &uhsmKey.keyStore, &err) != 0
	    || role_key_generate(uhsm, uhsmKey.keyStore,
		    HSM_KEY_TYPE_ECDSA_NIST_P384, &uhsmKey.keyId,
		    uhsmCert.signKey, PROTO_P384_PUB, &err) != 0
	    || sim_factory_certify(factory, &uhsmCert, &err) != 0) {
	fprintf(stderr, "U-HSM: %s\n", err.msg);
	exit(2);
    }

    /* M-HSMs 0x10 and 0x11. */
    hsmA = OpenDir("mhsmA");
    hsmB = OpenDir("mhsmB");
    if (role_mhsm_provision(hsmA, "10", ROLE_MHSM_KIND_STANDALONE, &vendor,
	    &created, &err) != 0
	    || role_mhsm_provision(hsmB, "0x11", ROLE_MHSM_KIND_STANDALONE,
		    &vendor, &created, &err) != 0
	    || role_mhsm_open(hsmA, "0000000000000000000000000000000010",
		    &mhsmA, &err) != 0
	    || role_mhsm_open(hsmB, NULL, &mhsmB, &err) != 0) {
	fprintf(stderr, "M-HSM: %s\n", err.msg);
	exit(2);
    }
}

static void
WorldDone(void)
{
    PlatError perr;

    role_mhsm_close(mhsmA);
    role_mhsm_close(mhsmB);
    role_hsm_close(hsmA);
    role_hsm_close(hsmB);
    hsm_close_key_store_service(uhsmKey.keyStore);
    role_hsm_close(uhsm);
    sim_bench_close(bench);
    sim_factory_close(factory);
    plat_remove_tree(home, &perr);
}

/* ------------------------------------------------------------------ */
/* Requests and jobs, as the U-HSM makes them                          */
/* ------------------------------------------------------------------ */

typedef struct Spec {
    const char *name, *action;
    int64_t max;
} Spec;

static uint8_t *
MakeRequest(const char *job, const char *mhsm, const Spec *specs, size_t n,
	size_t *len)
{
    ProtoRequest req;
    ProtoError err;
    uint8_t *image = NULL;
    size_t i;

    memset(&req, 0, sizeof(req));
    req.jobName = (char *) job;
    req.taskName = "MyHSMTask";
    strcpy(req.uhsmUuid, "1");
    strcpy(req.mhsmUuid, mhsm);
    proto_random(req.nonce, sizeof(req.nonce));
    req.created = 1;
    req.uhsmCert = uhsmCert;
    req.nTickets = n;
    req.tickets = calloc(n, sizeof(*req.tickets));
    for (i = 0; i < n; i++) {
	req.tickets[i].name = (char *) specs[i].name;
	req.tickets[i].device = "MyDevice";
	req.tickets[i].action = (char *) specs[i].action;
	req.tickets[i].maxDevices = specs[i].max;
    }
    if (proto_request_write(&req, role_sign, &uhsmKey, &image, len, &err) != 0) {
	fprintf(stderr, "request: %s\n", err.msg);
	image = NULL;
    }
    free(req.tickets);
    return image;
}

/* A job answering reply, for die, tickets in keyMode. */
static uint8_t *
MakeJob(const ProtoReply *reply, const Spec *specs, const char *die,
	const char *keyMode, size_t *len)
{
    static const char *const perDevice[] = {"UPK1"};
    ProtoBitstreamBody body;
    ProtoNamedBytes envm, sec, key, base;
    ProtoBitstream bs;
    ProtoJobDevice dev;
    ProtoJob job;
    ProtoTicketSecret *secrets;
    ProtoBuf b, aad, sb;
    ProtoError err;
    uint8_t kip[PROTO_KEY], fabric[200], envmData[64], keyData[32],
	    baseData[32], *image = NULL;
    size_t i, n = reply->nTickets;

    memset(&body, 0, sizeof(body));
    proto_random(fabric, sizeof(fabric));
    proto_random(envmData, sizeof(envmData));
    proto_random(keyData, sizeof(keyData));
    proto_random(baseData, sizeof(baseData));
    proto_random(kip, sizeof(kip));
    body.fabric = fabric;
    body.fabricLen = sizeof(fabric);
    envm.name = "client0";
    envm.data = envmData;
    envm.len = sizeof(envmData);
    body.nEnvm = 1;
    body.envm = &envm;
    sec.name = "FLASHLOCK";
    sec.data = (uint8_t *) "ON";
    sec.len = 2;
    body.nSecurity = 1;
    body.security = &sec;
    key.name = "UEK1";
    key.data = keyData;
    key.len = 32;
    body.nKeys = 1;
    body.keys = &key;
    body.nPerDevice = 1;
    body.perDevice = (char **) perDevice;

    memset(&bs, 0, sizeof(bs));
    bs.name = "MyBitstream";
    bs.type = "MASTER";
    bs.family = (char *) sim_die_family(die);
    bs.die = (char *) die;
    bs.designName = "hello_world_sb";
    bs.features = "SECURITY FABRIC ENVM";
    bs.protocol = "AUTH_CODE";
    bs.keyMode = (char *) keyMode;
    bs.generateCoc = 1;
    proto_buf_init(&b);
    proto_bitstream_body_encode(&body, &b);
    proto_sha384(b.data, b.len, bs.designDigest);
    proto_gcm_encrypt(kip, NULL, 0, b.data, b.len, &bs.cipher, &bs.cipherLen,
	    &err);
    proto_buf_free(&b);

    dev.name = "MyDevice";
    dev.hwLocation = 1;
    dev.family = bs.family;
    dev.die = (char *) die;
    dev.bitstream = "MyBitstream";

    memset(&job, 0, sizeof(job));
    job.jobName = reply->jobName;
    job.taskName = reply->taskName;
    job.jobType = "FPExpress";
    strcpy(job.uhsmUuid, "1");
    strcpy(job.mhsmUuid, reply->mhsmUuid);
    memcpy(job.requestDigest, reply->requestDigest, PROTO_DIGEST);
    memcpy(job.bindingNonce, reply->bindingNonce, PROTO_NONCE);
    proto_cert_fingerprint(&reply->mhsmCert, job.mhsmCertFingerprint);
    job.uhsmCert = uhsmCert;
    job.created = 2;
    job.nDevices = 1;
    job.devices = &dev;
    job.nBitstreams = 1;
    job.bitstreams = &bs;
    job.nTickets = n;
    job.tickets = calloc(n, sizeof(*job.tickets));
    secrets = calloc(n, sizeof(*secrets));
    base.name = "UPK1";
    base.data = baseData;
    base.len = 32;
    for (i = 0; i < n; i++) {
	memcpy(job.tickets[i].id, reply->tickets[i].id, PROTO_TICKET_ID);
	job.tickets[i].name = reply->tickets[i].name;
	job.tickets[i].device = "MyDevice";
	job.tickets[i].action = (char *) specs[i].action;
	job.tickets[i].maxDevices = specs[i].max;
	memcpy(secrets[i].id, reply->tickets[i].id, PROTO_TICKET_ID);
	secrets[i].action = (char *) specs[i].action;
	secrets[i].maxDevices = specs[i].max;
	memcpy(secrets[i].kip, kip, PROTO_KEY);
	secrets[i].keyMode = (char *) keyMode;
	memcpy(secrets[i].designDigest, bs.designDigest, PROTO_DIGEST);
	secrets[i].generateCoc = 1;
	secrets[i].nBaseKeys = 1;
	secrets[i].baseKeys = &base;
    }
    proto_buf_init(&aad);
    proto_buf_init(&sb);
    if (proto_job_binding(&job, &aad) != 0
	    || proto_ticket_secrets_encode(secrets, n, &sb) != 0
	    || proto_seal_p384(reply->mhsmCert.encKey, "tickets", aad.data,
		    aad.len, sb.data, sb.len, &job.sealedSecrets, &job.sealedLen,
		    &err) != 0
	    || proto_job_write(&job, role_sign, &uhsmKey, &image, len,
		    &err) != 0) {
	fprintf(stderr, "job: %s\n", err.msg);
	image = NULL;
    }
    proto_buf_free(&aad);
    proto_buf_free(&sb);
    free(job.sealedSecrets);
    free(job.tickets);
    free(secrets);
    free(bs.cipher);
    return image;
}

/* A served job: request, reply, job, loaded into m.  Returns the job. */
static int
Served(RoleMhsm *m, const char *jobName, const Spec *specs, size_t n,
	const char *die, const char *keyMode, ProtoJob *job)
{
    uint8_t *req, *rep = NULL, *img;
    size_t reqLen, repLen, imgLen, shared;
    ProtoReply reply;
    ProtoError err;
    int rc;

    req = MakeRequest(jobName, role_mhsm_uuid(m), specs, n, &reqLen);
    if (req == NULL || (rc = role_mhsm_serve_request(m, req, reqLen, "request",
	    &rep, &repLen, NULL, &reply, &err)) != 0) {
	fprintf(stderr, "serve: %s\n", err.msg);
	free(req);
	return -1;
    }
    img = MakeJob(&reply, specs, die, keyMode, &imgLen);
    rc = role_mhsm_load_job(m, img, imgLen, "job", job, &shared, &err);
    if (rc != 0) {
	fprintf(stderr, "load: %s\n", err.msg);
    }
    proto_reply_free(&reply);
    free(req);
    free(rep);
    free(img);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Running an action, as FlashPro Express does                         */
/* ------------------------------------------------------------------ */

typedef enum { AT_OK = 0, AT_AUTH, AT_CODE, AT_DEVICE, AT_CONFIRM } Stage;

typedef struct Run {
    Stage stage;			/* where it failed */
    int fail;				/* role_mhsm fail */
    SimCond cond;			/* device condition */
    RoleMhsmCode code;			/* the code issued */
    RoleMhsmCode after;			/* the counts after the CoC */
} Run;

static Run
RunAction(RoleMhsm *m, const char *prg, const ProtoJob *job, size_t ticket,
	const char *die)
{
    Run r;
    SimSession *s = NULL;
    SimError serr;
    ProtoError err;
    uint8_t challenge[PROTO_NONCE], *answer = NULL, *code = NULL, *coc = NULL;
    size_t answerLen, codeLen, cocLen;
    RoleMhsmDevice dev;

    memset(&r, 0, sizeof(r));
    if (sim_session_open(bench, prg, &s, NULL, &serr) != 0) {
	r.stage = AT_DEVICE;
	r.cond = serr.cond;
	return r;
    }
    if (role_mhsm_challenge(m, challenge, &err) != 0
	    || sim_session_authenticate(s, challenge, &answer, &answerLen,
		    &serr) != 0) {
	r.stage = AT_DEVICE;
	r.cond = serr.cond;
	goto done;
    }
    if ((r.fail = role_mhsm_authenticate(m, challenge, answer, answerLen, die,
	    &dev, &err)) != 0) {
	r.stage = AT_AUTH;
	goto done;
    }
    if ((r.fail = role_mhsm_issue_code(m, challenge, job->tickets[ticket].id,
	    &code, &codeLen, &r.code, &err)) != 0) {
	r.stage = AT_CODE;
	goto done;
    }
    if (sim_session_run(s, job->tickets[ticket].action, code, codeLen,
	    &job->bitstreams[0], &coc, &cocLen, NULL, &serr) != 0) {
	r.stage = AT_DEVICE;
	r.cond = serr.cond;
	goto done;
    }
    if ((r.fail = role_mhsm_confirm(m, job->tickets[ticket].id, coc, cocLen,
	    &r.after, &err)) != 0) {
	r.stage = AT_CONFIRM;
    }
  done:
    if (r.stage != AT_OK && getenv("TEST_VERBOSE") != NULL) {
	fprintf(stderr, "  stage %d: %s / %s\n", r.stage, err.msg, serr.e.msg);
    }
    free(answer);
    free(code);
    free(coc);
    sim_session_close(s);
    return r;
}

/* A programmer with a fresh board of die; returns its name in prg. */
static void
NewBoard(const char *die, char prg[SIM_NAME_MAX + 1], uint8_t dsn[PROTO_DSN])
{
    SimProgrammer p;
    SimError serr;

    if (sim_programmer_add(bench, NULL, "FlashPro5", &p, &serr) != 0
	    || sim_board_insert(bench, p.name, die, NULL, dsn, NULL,
		    &serr) != 0) {
	fprintf(stderr, "board: %s\n", serr.e.msg);
	exit(2);
    }
    strcpy(prg, p.name);
}

static int64_t
Left(RoleMhsm *m, const ProtoJob *job, size_t i)
{
    ProtoStatus st;
    ProtoError err;
    int64_t left = -99;

    if (role_mhsm_status(m, job, ROLE_MHSM_STATUS, NULL, NULL, &st, &err) == 0) {
	left = st.tickets[i].maxDevices == PROTO_UNLIMITED ? -1
		: st.tickets[i].maxDevices - st.tickets[i].completed
		- st.tickets[i].pending;
	proto_status_free(&st);
    }
    return left;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void
TestProvision(void)
{
    ProtoError err;
    RoleMhsm *m = NULL;
    char uuid[41];
    int created = -1, kind = -1;

    CHECK_EQ(role_mhsm_provision(hsmA, "0x0010", ROLE_MHSM_KIND_STANDALONE,
	    &vendor, &created, &err), 0);
    CHECK_EQ(created, 0);
    CHECK_EQ(role_mhsm_provision(hsmA, "12", ROLE_MHSM_KIND_STANDALONE,
	    &vendor, &created, &err), ROLE_MHSM_UUID);
    CHECK(strstr(err.msg, "M-HSM 10") != NULL);
    CHECK_EQ(role_mhsm_provision(hsmA, "10", ROLE_MHSM_KIND_UHSM_FUNCTION,
	    &vendor, &created, &err), ROLE_MHSM_UUID);
    CHECK_EQ(role_mhsm_open(hsmA, "11", &m, &err), ROLE_MHSM_UUID);
    CHECK_EQ(role_mhsm_provisioned(hsmA, uuid, &kind, &err), 1);
    CHECK(strcmp(uuid, "10") == 0);
    CHECK_EQ(kind, ROLE_MHSM_KIND_STANDALONE);
    CHECK_EQ(role_mhsm_provisioned(uhsm, uuid, &kind, &err), 0);
    CHECK_EQ(role_mhsm_open(uhsm, NULL, &m, &err), ROLE_MHSM_NOT_PROVISIONED);
    CHECK(strcmp(role_mhsm_cert(mhsmA)->subject, "10") == 0);
    CHECK_EQ(proto_cert_verify(role_mhsm_cert(mhsmA), PROTO_CERT_MHSM,
	    vendor.root, &err), 0);
}

static void
TestRequest(void)
{
    static const Spec specs[] = {{"T1", "PROGRAM", 2}, {"T2", "VERIFY", 1}};
    uint8_t *req, *rep = NULL;
    size_t reqLen, repLen;
    ProtoReply reply;
    ProtoRequest request;
    ProtoError err;

    req = MakeRequest("ReqJob", "10", specs, 2, &reqLen);
    CHECK(req != NULL);
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, reqLen, "request", &rep,
	    &repLen, &request, &reply, &err), 0);
    CHECK_EQ(reply.nTickets, 2);
    CHECK(memcmp(reply.tickets[0].id, reply.tickets[1].id,
	    PROTO_TICKET_ID) != 0);
    CHECK(strcmp(reply.mhsmUuid, "10") == 0);
    CHECK(strcmp(request.jobName, "ReqJob") == 0);
    proto_reply_free(&reply);
    proto_request_free(&request);
    free(rep);

    /* A replay is refused and changes nothing. */
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, reqLen, "request", &rep,
	    &repLen, NULL, NULL, &err), ROLE_MHSM_REPLAYED);
    CHECK(rep == NULL);
    CHECK(strstr(err.msg, "replayed") != NULL);

    /* For another M-HSM. */
    CHECK_EQ(role_mhsm_serve_request(mhsmB, req, reqLen, "request", &rep,
	    &repLen, NULL, NULL, &err), ROLE_MHSM_WRONG_HSM);
    free(req);

    /* Altered: one byte flipped anywhere is caught. */
    req = MakeRequest("ReqJob2", "10", specs, 2, &reqLen);
    req[reqLen / 2] ^= 0x01;
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, reqLen, "request", &rep,
	    &repLen, NULL, NULL, &err), ROLE_MHSM_CORRUPT);
    req[reqLen / 2] ^= 0x01;
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, 10, "request", &rep,
	    &repLen, NULL, NULL, &err), ROLE_MHSM_CORRUPT);
    /* Not altered: it is served (the altered copy left no record). */
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, reqLen, "request", &rep,
	    &repLen, NULL, NULL, &err), 0);
    free(rep);
    free(req);
}

static void
TestJobBinding(void)
{
    static const Spec specs[] = {{"T1", "PROGRAM", 2}, {"T2", "ERASE", 2}};
    uint8_t *req, *rep = NULL, *img;
    size_t reqLen, repLen, imgLen, shared = 99;
    ProtoReply reply;
    ProtoJob job;
    ProtoError err;

    req = MakeRequest("BindJob", "10", specs, 2, &reqLen);
    CHECK_EQ(role_mhsm_serve_request(mhsmA, req, reqLen, "request", &rep,
	    &repLen, NULL, &reply, &err), 0);
    img = MakeJob(&reply, specs, "M2S090", "KFPE", &imgLen);
    CHECK(img != NULL);

    /* Job for M-HSM A refused by M-HSM B. */
    CHECK_EQ(role_mhsm_load_job(mhsmB, img, imgLen, "job", &job, &shared,
	    &err), ROLE_MHSM_WRONG_HSM);
    CHECK(strstr(err.msg, "M-HSM 10") != NULL);

    /* Tampered. */
    img[imgLen - 20] ^= 0x40;
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &job, &shared,
	    &err), ROLE_MHSM_CORRUPT);
    img[imgLen - 20] ^= 0x40;

    /* Loaded, then loaded again: shared, nothing added. */
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &job, &shared,
	    &err), 0);
    CHECK_EQ(shared, 0);
    proto_job_free(&job);
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &job, &shared,
	    &err), 0);
    CHECK_EQ(shared, 2);
    CHECK_EQ(Left(mhsmA, &job, 0), 2);

    /* Another job for the same tickets (another bitstream key): refused. */
    {
	ProtoJob other;
	size_t img2Len;
	uint8_t *img2 = MakeJob(&reply, specs, "M2S090", "KFPE", &img2Len);

	CHECK_EQ(role_mhsm_load_job(mhsmA, img2, img2Len, "job", &other,
		&shared, &err), ROLE_MHSM_CORRUPT);
	CHECK(strstr(err.msg, "another bitstream") != NULL);
	free(img2);
    }

    /* Terminated: never loadable again. */
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_TERMINATE, NULL, NULL,
	    NULL, &err), 0);
    proto_job_free(&job);
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &job, &shared,
	    &err), ROLE_MHSM_ENDED);
    CHECK(strstr(err.msg, "can never be loaded again") != NULL);
    proto_reply_free(&reply);
    free(req);
    free(rep);
    free(img);

    /* A job answering a request this M-HSM never served. */
    req = MakeRequest("Other", "11", specs, 2, &reqLen);
    CHECK_EQ(role_mhsm_serve_request(mhsmB, req, reqLen, "request", &rep,
	    &repLen, NULL, &reply, &err), 0);
    memcpy(reply.mhsmUuid, "10", 3);
    reply.mhsmCert = *role_mhsm_cert(mhsmA);
    img = MakeJob(&reply, specs, "M2S090", "KFPE", &imgLen);
    CHECK_EQ(role_mhsm_load_job(mhsmA, img, imgLen, "job", &job, &shared,
	    &err), ROLE_MHSM_UNKNOWN_REQUEST);
    proto_reply_free(&reply);
    free(req);
    free(rep);
    free(img);
}

/* The tutorial's counts in each key mode, and a third board refused. */
static void
ProgramTwo(const char *die, const char *keyMode)
{
    static const Spec specs[] = {{"MyTicket1", "PROGRAM", 2},
	{"MyTicket2", "VERIFY", 2}, {"MyTicket3", "ERASE", 2}};
    char jobName[32], p1[SIM_NAME_MAX + 1], p2[SIM_NAME_MAX + 1],
	    p3[SIM_NAME_MAX + 1];
    uint8_t d1[PROTO_DSN], d2[PROTO_DSN], d3[PROTO_DSN];
    SimDeviceInfo info;
    SimError serr;
    ProtoJob job;
    Run r;

    snprintf(jobName, sizeof(jobName), "Job%s%s", die, keyMode);
    CHECK_EQ(Served(mhsmA, jobName, specs, 3, die, keyMode, &job), 0);
    NewBoard(die, p1, d1);
    NewBoard(die, p2, d2);
    NewBoard(die, p3, d3);
    CHECK_EQ(Left(mhsmA, &job, 0), 2);
    r = RunAction(mhsmA, p1, &job, 0, die);
    CHECK_EQ(r.stage, AT_OK);
    CHECK(strcmp(r.code.keyMode, keyMode) == 0);
    CHECK_EQ(Left(mhsmA, &job, 0), 1);
    r = RunAction(mhsmA, p2, &job, 0, die);
    CHECK_EQ(r.stage, AT_OK);
    CHECK_EQ(Left(mhsmA, &job, 0), 0);
    CHECK_EQ(Left(mhsmA, &job, 1), 2);
    r = RunAction(mhsmA, p3, &job, 0, die);
    CHECK_EQ(r.stage, AT_CODE);
    CHECK_EQ(r.fail, ROLE_MHSM_EXHAUSTED);
    CHECK_EQ(Left(mhsmA, &job, 0), 0);
    CHECK_EQ(sim_device_info(bench, d3, &info, &serr), 0);
    CHECK_EQ(info.programmed, 0);
    CHECK_EQ(sim_device_info(bench, d2, &info, &serr), 0);
    CHECK_EQ(info.programmed, 1);
    CHECK_EQ(info.cocs, 1);
    CHECK_EQ(info.nKeys, 2);		/* UEK1 (project), UPK1 (per device) */
    CHECK(memcmp(info.designDigest, job.bitstreams[0].designDigest,
	    PROTO_DIGEST) == 0);
    /* VERIFY and ERASE on board 2: 0,1,1. */
    CHECK_EQ(RunAction(mhsmA, p2, &job, 1, die).stage, AT_OK);
    CHECK_EQ(RunAction(mhsmA, p2, &job, 2, die).stage, AT_OK);
    CHECK_EQ(Left(mhsmA, &job, 0), 0);
    CHECK_EQ(Left(mhsmA, &job, 1), 1);
    CHECK_EQ(Left(mhsmA, &job, 2), 1);
    CHECK_EQ(sim_device_info(bench, d2, &info, &serr), 0);
    CHECK_EQ(info.programmed, 0);
    CHECK_EQ(info.cocs, 3);
    proto_job_free(&job);
}

static void
TestKfpe(void)
{
    ProgramTwo("M2S090", "KFPE");
}

static void
TestKfp(void)
{
    ProgramTwo("MPF300", "KFP");
}

static void
TestDfk(void)
{
    ProgramTwo("M2S010", "DFK");
}

/* KFP mode on a die without KFP, a board of the wrong die. */
static void
TestModeAndDie(void)
{
    static const Spec specs[] = {{"T", "PROGRAM", 5}};
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN];
    ProtoJob job;
    Run r;

    CHECK_EQ(Served(mhsmA, "KfpOnSmall", specs, 1, "M2S010", "KFP", &job), 0);
    NewBoard("M2S010", prg, dsn);
    r = RunAction(mhsmA, prg, &job, 0, "M2S010");
    CHECK_EQ(r.stage, AT_CODE);
    CHECK_EQ(r.fail, ROLE_MHSM_KEY_MODE);
    CHECK_EQ(Left(mhsmA, &job, 0), 5);
    NewBoard("M2S150", prg, dsn);
    r = RunAction(mhsmA, prg, &job, 0, "M2S010");
    CHECK_EQ(r.stage, AT_AUTH);
    CHECK_EQ(r.fail, ROLE_MHSM_DIE);
    CHECK_EQ(Left(mhsmA, &job, 0), 5);
    proto_job_free(&job);
}

/*
 * The device's refusals: a code made for another device, a code replayed
 * into a new session, an altered code; and the M-HSM's: a challenge not
 * issued, answered twice, an altered answer, a forged CoC.
 */
static void
TestDeviceProtocol(void)
{
    static const Spec specs[] = {{"T", "PROGRAM", 10}};
    char p1[SIM_NAME_MAX + 1], p2[SIM_NAME_MAX + 1];
    uint8_t d1[PROTO_DSN], d2[PROTO_DSN], ch[PROTO_NONCE], ch2[PROTO_NONCE];
    uint8_t *a1 = NULL, *a2 = NULL, *code = NULL, *coc = NULL;
    size_t a1Len, a2Len, codeLen, cocLen;
    SimSession *s1 = NULL, *s2 = NULL;
    RoleMhsmDevice dev;
    RoleMhsmCode info;
    ProtoError err;
    SimError serr;
    ProtoJob job;
    ProtoCoc c;
    ProtoBuf b;

    CHECK_EQ(Served(mhsmA, "DevProto", specs, 1, "M2S090", "KFPE", &job), 0);
    NewBoard("M2S090", p1, d1);
    NewBoard("M2S090", p2, d2);

    /* A challenge this M-HSM never issued. */
    CHECK_EQ(sim_session_open(bench, p1, &s1, NULL, &serr), 0);
    proto_random(ch, sizeof(ch));
    CHECK_EQ(sim_session_authenticate(s1, ch, &a1, &a1Len, &serr), 0);
    CHECK_EQ(role_mhsm_authenticate(mhsmA, ch, a1, a1Len, "M2S090", &dev,
	    &err), ROLE_MHSM_AUTH);
    free(a1);
    sim_session_close(s1);

    /* An altered answer (its KFP signature) fails, and the challenge is
     * spent. */
    CHECK_EQ(sim_session_open(bench, p1, &s1, NULL, &serr), 0);
    CHECK_EQ(role_mhsm_challenge(mhsmA, ch, &err), 0);
    CHECK_EQ(sim_session_authenticate(s1, ch, &a1, &a1Len, &serr), 0);
    a1[a1Len - 3] ^= 1;
    CHECK_EQ(role_mhsm_authenticate(mhsmA, ch, a1, a1Len, "M2S090", &dev,
	    &err), ROLE_MHSM_AUTH);
    a1[a1Len - 3] ^= 1;
    CHECK_EQ(role_mhsm_authenticate(mhsmA, ch, a1, a1Len, "M2S090", &dev,
	    &err), ROLE_MHSM_AUTH);
    free(a1);
    sim_session_close(s1);

    /* A code for device 1 given to device 2: refused by device 2. */
    CHECK_EQ(sim_session_open(bench, p1, &s1, NULL, &serr), 0);
    CHECK_EQ(sim_session_open(bench, p2, &s2, NULL, &serr), 0);
    CHECK_EQ(role_mhsm_challenge(mhsmA, ch, &err), 0);
    CHECK_EQ(sim_session_authenticate(s1, ch, &a1, &a1Len, &serr), 0);
    CHECK_EQ(sim_session_authenticate(s2, ch, &a2, &a2Len, &serr), 0);
    CHECK_EQ(role_mhsm_authenticate(mhsmA, ch, a1, a1Len, "M2S090", &dev,
	    &err), 0);
    CHECK(memcmp(dev.dsn, d1, PROTO_DSN) == 0);
    CHECK_EQ(dev.hasKfp, 1);
    CHECK_EQ(role_mhsm_issue_code(mhsmA, ch, job.tickets[0].id, &code,
	    &codeLen, &info, &err), 0);
    CHECK_EQ(info.pending, 1);
    CHECK_EQ(sim_session_run(s2, "PROGRAM", code, codeLen, &job.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    CHECK(strstr(serr.e.msg, "not for this device") != NULL);

    /* An altered code: refused by device 1. */
    code[codeLen - 5] ^= 0x10;
    CHECK_EQ(sim_session_run(s1, "PROGRAM", code, codeLen, &job.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    code[codeLen - 5] ^= 0x10;
    sim_session_close(s1);
    sim_session_close(s2);
    free(a1);
    free(a2);

    /* The same code replayed into a new session of device 1: refused. */
    CHECK_EQ(sim_session_open(bench, p1, &s1, NULL, &serr), 0);
    CHECK_EQ(role_mhsm_challenge(mhsmA, ch2, &err), 0);
    CHECK_EQ(sim_session_authenticate(s1, ch2, &a1, &a1Len, &serr), 0);
    CHECK_EQ(sim_session_run(s1, "PROGRAM", code, codeLen, &job.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    sim_session_close(s1);
    free(code);
    free(a1);

    /* Device 1 comes back: same reservation, new code; its CoC completes
     * it.  A forged CoC (counter changed) is refused first. */
    CHECK_EQ(sim_session_open(bench, p1, &s1, NULL, &serr), 0);
    CHECK_EQ(role_mhsm_challenge(mhsmA, ch, &err), 0);
    CHECK_EQ(sim_session_authenticate(s1, ch, &a1, &a1Len, &serr), 0);
    CHECK_EQ(role_mhsm_authenticate(mhsmA, ch, a1, a1Len, "M2S090", &dev,
	    &err), 0);
    CHECK_EQ(role_mhsm_issue_code(mhsmA, ch, job.tickets[0].id, &code,
	    &codeLen, &info, &err), 0);
    CHECK_EQ(info.reused, 1);
    CHECK_EQ(info.pending, 1);
    CHECK_EQ(sim_session_run(s1, "PROGRAM", code, codeLen, &job.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), 0);
    CHECK_EQ(proto_coc_decode(coc, cocLen, &c, &err), 0);
    c.deviceCounter += 1;
    proto_buf_init(&b);
    proto_coc_encode(&c, &b);
    CHECK_EQ(role_mhsm_confirm(mhsmA, job.tickets[0].id, b.data, b.len, &info,
	    &err), ROLE_MHSM_COC);
    proto_buf_free(&b);
    proto_coc_free(&c);
    CHECK_EQ(role_mhsm_confirm(mhsmA, job.tickets[0].id, coc, cocLen, &info,
	    &err), 0);
    CHECK_EQ(info.completed, 1);
    CHECK_EQ(info.pending, 0);
    /* The same CoC twice: no pending reservation answers it. */
    CHECK_EQ(role_mhsm_confirm(mhsmA, job.tickets[0].id, coc, cocLen, &info,
	    &err), ROLE_MHSM_COC);
    CHECK_EQ(Left(mhsmA, &job, 0), 9);
    sim_session_close(s1);
    free(a1);
    free(code);
    free(coc);
    proto_job_free(&job);
}

/* One session of prg: challenge, authenticity check, a code for ticket i
 * of job.  Returns the session (open), the code in *code. */
static SimSession *
CodeFor(RoleMhsm *m, const char *prg, const ProtoJob *job, size_t i,
	uint8_t **code, size_t *codeLen, RoleMhsmCode *info)
{
    SimSession *s = NULL;
    SimError serr;
    ProtoError err;
    RoleMhsmDevice dev;
    uint8_t ch[PROTO_NONCE], *answer = NULL;
    size_t answerLen;

    *code = NULL;
    if (sim_session_open(bench, prg, &s, NULL, &serr) != 0) {
	return NULL;
    }
    if (role_mhsm_challenge(m, ch, &err) != 0
	    || sim_session_authenticate(s, ch, &answer, &answerLen, &serr) != 0
	    || role_mhsm_authenticate(m, ch, answer, answerLen, "M2S090", &dev,
		    &err) != 0
	    || role_mhsm_issue_code(m, ch, job->tickets[i].id, code, codeLen,
		    info, &err) != 0) {
	free(answer);
	sim_session_close(s);
	return NULL;
    }
    free(answer);
    return s;
}

/*
 * A code is good for one device, one action and one bitstream: the device
 * refuses a PROGRAM code for ERASE, a second use of a code in its session,
 * a bitstream altered in one byte, another design's bitstream; VERIFY of
 * another design than the one it holds fails; ERASE clears the design.
 * After every refusal the device holds what it held, and its reservation
 * waits for it.
 */
static void
TestDeviceRefusals(void)
{
    static const Spec specs[] = {{"P", "PROGRAM", 10}, {"V", "VERIFY", 10},
	{"E", "ERASE", 10}};
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN], *code = NULL, *coc = NULL;
    size_t codeLen, cocLen;
    ProtoJob job1, job2;
    ProtoBitstream altered;
    SimDeviceInfo info;
    SimSession *s;
    SimError serr;
    RoleMhsmCode ci;
    Run r;

    /* Two jobs for the same die: two designs. */
    CHECK_EQ(Served(mhsmA, "Refuse1", specs, 3, "M2S090", "KFPE", &job1), 0);
    CHECK_EQ(Served(mhsmA, "Refuse2", specs, 3, "M2S090", "KFPE", &job2), 0);
    CHECK(memcmp(job1.bitstreams[0].designDigest,
	    job2.bitstreams[0].designDigest, PROTO_DIGEST) != 0);
    NewBoard("M2S090", prg, dsn);

    /* A PROGRAM code used for ERASE, then used a second time. */
    s = CodeFor(mhsmA, prg, &job1, 0, &code, &codeLen, &ci);
    CHECK(s != NULL);
    CHECK_EQ(sim_session_run(s, "ERASE", code, codeLen, &job1.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    CHECK(strstr(serr.e.msg, "authorizes PROGRAM, not ERASE") != NULL);
    CHECK_EQ(sim_session_run(s, "PROGRAM", code, codeLen, &job1.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    CHECK(coc == NULL);
    sim_session_close(s);
    free(code);
    CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
    CHECK_EQ(info.programmed, 0);
    CHECK_EQ(info.cocs, 0);
    CHECK_EQ(Left(mhsmA, &job1, 0), 9);

    /* The bitstream altered in one byte: refused under a valid code. */
    altered = job1.bitstreams[0];
    altered.cipher = malloc(altered.cipherLen);
    CHECK(altered.cipher != NULL);
    memcpy(altered.cipher, job1.bitstreams[0].cipher, altered.cipherLen);
    altered.cipher[altered.cipherLen / 2] ^= 0x04;
    s = CodeFor(mhsmA, prg, &job1, 0, &code, &codeLen, &ci);
    CHECK(s != NULL);
    CHECK_EQ(ci.reused, 1);
    CHECK_EQ(sim_session_run(s, "PROGRAM", code, codeLen, &altered, &coc,
	    &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    CHECK(strstr(serr.e.msg, "does not decrypt") != NULL);
    sim_session_close(s);
    free(code);
    free(altered.cipher);

    /* Another design's bitstream under job 1's code. */
    s = CodeFor(mhsmA, prg, &job1, 0, &code, &codeLen, &ci);
    CHECK(s != NULL);
    CHECK_EQ(sim_session_run(s, "PROGRAM", code, codeLen, &job2.bitstreams[0],
	    &coc, &cocLen, NULL, &serr), -1);
    CHECK_EQ(serr.cond, SIM_REFUSED);
    CHECK(strstr(serr.e.msg, "not the one the authorization code is for")
	    != NULL);
    sim_session_close(s);
    free(code);
    CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
    CHECK_EQ(info.programmed, 0);
    CHECK_EQ(Left(mhsmA, &job1, 0), 9);

    /* Programmed with design 1 under the same reservation. */
    r = RunAction(mhsmA, prg, &job1, 0, "M2S090");
    CHECK_EQ(r.stage, AT_OK);
    CHECK_EQ(r.code.reused, 1);
    CHECK_EQ(r.after.completed, 1);
    CHECK_EQ(Left(mhsmA, &job1, 0), 9);

    /* VERIFY against design 2: the device holds another one. */
    r = RunAction(mhsmA, prg, &job2, 1, "M2S090");
    CHECK_EQ(r.stage, AT_DEVICE);
    CHECK_EQ(r.cond, SIM_VERIFY);
    CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
    CHECK_EQ(info.programmed, 1);
    CHECK(memcmp(info.designDigest, job1.bitstreams[0].designDigest,
	    PROTO_DIGEST) == 0);
    /* VERIFY against design 1 passes; ERASE clears it. */
    CHECK_EQ(RunAction(mhsmA, prg, &job1, 1, "M2S090").stage, AT_OK);
    CHECK_EQ(RunAction(mhsmA, prg, &job1, 2, "M2S090").stage, AT_OK);
    CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
    CHECK_EQ(info.programmed, 0);
    CHECK_EQ(info.nKeys, 0);
    CHECK_EQ(info.cocs, 3);
    /* VERIFY of the blank device now fails. */
    r = RunAction(mhsmA, prg, &job1, 1, "M2S090");
    CHECK_EQ(r.stage, AT_DEVICE);
    CHECK_EQ(r.cond, SIM_VERIFY);
    proto_job_free(&job1);
    proto_job_free(&job2);
}

/* A board pulled at each step: no code is lost, nothing is counted twice. */
static void
TestPulledBoard(void)
{
    static const Spec specs[] = {{"T", "PROGRAM", 1}};
    static const SimStep steps[] = {SIM_STEP_AUTH, SIM_STEP_CODE,
	SIM_STEP_PROGRAM, SIM_STEP_COC};
    char prg[SIM_NAME_MAX + 1], other[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN], dsn2[PROTO_DSN], back[PROTO_DSN];
    SimDeviceInfo info;
    SimFault f;
    SimError serr;
    ProtoJob job;
    size_t i;
    Run r;

    for (i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
	char name[32];

	snprintf(name, sizeof(name), "Pull%d", (int) steps[i]);
	CHECK_EQ(Served(mhsmA, name, specs, 1, "MPF300", "KFPE", &job), 0);
	NewBoard("MPF300", prg, dsn);
	NewBoard("MPF300", other, dsn2);
	memset(&f, 0, sizeof(f));
	strcpy(f.kind, "pull_board");
	f.step = steps[i];
	strcpy(f.programmer, prg);
	CHECK_EQ(sim_fault_set(bench, &f, &serr), 0);
	r = RunAction(mhsmA, prg, &job, 0, "MPF300");
	CHECK_EQ(r.stage, AT_DEVICE);
	CHECK_EQ(r.cond, SIM_PULLED);
	/* Before the code: nothing reserved.  After: one pending. */
	CHECK_EQ(Left(mhsmA, &job, 0), steps[i] == SIM_STEP_AUTH ? 1 : 0);
	CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
	CHECK_EQ(info.programmer[0], '\0');
	CHECK_EQ(info.interrupted, steps[i] == SIM_STEP_PROGRAM);
	CHECK_EQ(info.programmed, steps[i] == SIM_STEP_COC);
	/* Another device cannot take the pending code. */
	if (steps[i] != SIM_STEP_AUTH) {
	    r = RunAction(mhsmA, other, &job, 0, "MPF300");
	    CHECK_EQ(r.fail, ROLE_MHSM_EXHAUSTED);
	}
	/* The pulled board comes back and completes under its reservation. */
	CHECK_EQ(sim_board_insert(bench, prg, NULL, dsn, back, NULL, &serr), 0);
	CHECK(memcmp(back, dsn, PROTO_DSN) == 0);
	r = RunAction(mhsmA, prg, &job, 0, "MPF300");
	CHECK_EQ(r.stage, AT_OK);
	CHECK_EQ(r.code.reused, steps[i] != SIM_STEP_AUTH);
	CHECK_EQ(r.after.completed, 1);
	CHECK_EQ(r.after.pending, 0);
	CHECK_EQ(Left(mhsmA, &job, 0), 0);
	CHECK_EQ(sim_device_info(bench, dsn, &info, &serr), 0);
	CHECK_EQ(info.programmed, 1);
	CHECK_EQ(info.interrupted, 0);
	proto_job_free(&job);
    }
}

/* Completion needs every code used; termination ends what is left. */
static void
TestEndOfJob(void)
{
    static const Spec specs[] = {{"P", "PROGRAM", 1}, {"U", "VERIFY",
	PROTO_UNLIMITED}};
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN], *img = NULL, *img2 = NULL;
    size_t len, len2, i;
    ProtoStatus st, st2;
    ProtoError err;
    ProtoJob job;
    ProtoBuf tbs;
    Run r;

    CHECK_EQ(Served(mhsmA, "EndJob", specs, 2, "M2S090", "KFPE", &job), 0);
    NewBoard("M2S090", prg, dsn);
    CHECK_EQ(RunAction(mhsmA, prg, &job, 0, "M2S090").stage, AT_OK);
    for (i = 0; i < 3; i++) {
	r = RunAction(mhsmA, prg, &job, 1, "M2S090");
	CHECK_EQ(r.stage, AT_OK);
	CHECK_EQ(r.code.maxDevices, PROTO_UNLIMITED);
    }
    CHECK_EQ(Left(mhsmA, &job, 1), -1);
    /* The unlimited ticket keeps the job from completing. */
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_COMPLETE, &img, &len,
	    NULL, &err), ROLE_MHSM_INCOMPLETE);
    CHECK(strstr(err.msg, "unlimited") != NULL);
    CHECK(img == NULL);
    /* An intermediate status: signed, sequence grows. */
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_STATUS, &img, &len, &st,
	    &err), 0);
    CHECK_EQ(st.isEnd, 0);
    CHECK_EQ(st.nCocs, 4);
    CHECK_EQ(st.tickets[1].completed, 3);
    CHECK_EQ(proto_status_read(img, len, "status",
	    role_mhsm_cert(mhsmA)->signKey, &st2, &err), 0);
    CHECK_EQ(st2.sequence, st.sequence);
    proto_status_free(&st2);
    free(img);
    /* Terminate: certifiers for both tickets, verifiable. */
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_TERMINATE, &img2, &len2,
	    &st2, &err), 0);
    CHECK(st2.sequence > st.sequence);
    CHECK_EQ(st2.isEnd, 1);
    CHECK(strcmp(st2.endType, "TERMINATED") == 0);
    CHECK_EQ(st2.nCertifiers, 2);
    CHECK_EQ(st2.nCocs, 4);
    for (i = 0; i < st2.nCertifiers; i++) {
	proto_buf_init(&tbs);
	CHECK_EQ(proto_certifier_tbs(&st2.certifiers[i], &tbs), 0);
	CHECK_EQ(proto_verify_p384(role_mhsm_cert(mhsmA)->signKey, tbs.data,
		tbs.len, st2.certifiers[i].signature, &err), 0);
	proto_buf_free(&tbs);
    }
    CHECK_EQ(st2.certifiers[0].completed, 1);
    CHECK_EQ(st2.certifiers[1].completed, 3);
    /* No more codes, and the same end status again. */
    r = RunAction(mhsmA, prg, &job, 1, "M2S090");
    CHECK_EQ(r.fail, ROLE_MHSM_ENDED);
    proto_status_free(&st);
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_COMPLETE, NULL, NULL, &st,
	    &err), 0);
    CHECK_EQ(st.nCertifiers, 2);
    CHECK(memcmp(st.certifiers[0].signature, st2.certifiers[0].signature,
	    PROTO_P384_SIG) == 0);
    proto_status_free(&st);
    proto_status_free(&st2);
    free(img2);
    proto_job_free(&job);
}

/* Completion once every code is used; the list of tickets; removal. */
static void
TestCompleteAndList(void)
{
    static const Spec specs[] = {{"Only", "PROGRAM", 1}};
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN];
    RoleMhsmTicket *list = NULL;
    ProtoStatus st;
    ProtoError err;
    ProtoJob job, job2;
    size_t n = 0, i, removed = 9;
    int found = 0;

    CHECK_EQ(Served(mhsmA, "Complete", specs, 1, "M2S090", "DFK", &job), 0);
    NewBoard("M2S090", prg, dsn);
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_COMPLETE, NULL, NULL,
	    NULL, &err), ROLE_MHSM_INCOMPLETE);
    CHECK_EQ(RunAction(mhsmA, prg, &job, 0, "M2S090").stage, AT_OK);
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_COMPLETE, NULL, NULL,
	    &st, &err), 0);
    CHECK(strcmp(st.endType, "COMPLETED") == 0);
    proto_status_free(&st);

    CHECK_EQ(Served(mhsmA, "Remove", specs, 1, "M2S090", "DFK", &job2), 0);
    CHECK_EQ(role_mhsm_list_tickets(mhsmA, &list, &n, &err), 0);
    for (i = 0; i < n; i++) {
	if (memcmp(list[i].id, job2.tickets[0].id, PROTO_TICKET_ID) == 0) {
	    found = 1;
	    CHECK_EQ(list[i].ended, 0);
	    CHECK(strcmp(list[i].jobName, "Remove") == 0);
	}
	if (memcmp(list[i].id, job.tickets[0].id, PROTO_TICKET_ID) == 0) {
	    CHECK_EQ(list[i].ended, 1);
	    CHECK_EQ(list[i].completed, 1);
	}
    }
    CHECK_EQ(found, 1);
    role_mhsm_tickets_free(list, n);
    /* An unknown id removes nothing. */
    {
	uint8_t ids[2 * PROTO_TICKET_ID];

	memcpy(ids, job2.tickets[0].id, PROTO_TICKET_ID);
	memset(ids + PROTO_TICKET_ID, 0x5A, PROTO_TICKET_ID);
	CHECK_EQ(role_mhsm_remove_tickets(mhsmA, ids, 2, &removed, &err),
		ROLE_MHSM_NOT_LOADED);
	CHECK_EQ(Left(mhsmA, &job2, 0), 1);
	CHECK_EQ(role_mhsm_remove_tickets(mhsmA, ids, 1, &removed, &err), 0);
	CHECK_EQ(removed, 1);
    }
    CHECK_EQ(RunAction(mhsmA, prg, &job2, 0, "M2S090").fail, ROLE_MHSM_ENDED);
    proto_job_free(&job);
    proto_job_free(&job2);
}

/* More CoCs than a ticket record keeps: they move to chunk records. */
static void
TestManyCocs(void)
{
    static const Spec specs[] = {{"Many", "ERASE", PROTO_UNLIMITED}};
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN];
    ProtoStatus st;
    ProtoError err;
    ProtoJob job;
    size_t i, ok = 0;

    CHECK_EQ(Served(mhsmA, "Many", specs, 1, "M2S010", "DFK", &job), 0);
    NewBoard("M2S010", prg, dsn);
    for (i = 0; i < 70; i++) {
	ok += RunAction(mhsmA, prg, &job, 0, "M2S010").stage == AT_OK;
    }
    CHECK_EQ(ok, 70);
    CHECK_EQ(role_mhsm_status(mhsmA, &job, ROLE_MHSM_STATUS, NULL, NULL, &st,
	    &err), 0);
    CHECK_EQ(st.nCocs, 70);
    CHECK_EQ(st.tickets[0].completed, 70);
    for (i = 1; i < st.nCocs; i++) {
	CHECK(st.cocs[i].deviceCounter == st.cocs[i - 1].deviceCounter + 1);
    }
    proto_status_free(&st);
    proto_job_free(&job);
}

int
main(void)
{
    int rc;

    HomeInit();
    WorldInit();
    UNIT_RUN(TestProvision);
    UNIT_RUN(TestRequest);
    UNIT_RUN(TestJobBinding);
    UNIT_RUN(TestKfpe);
    UNIT_RUN(TestKfp);
    UNIT_RUN(TestDfk);
    UNIT_RUN(TestModeAndDie);
    UNIT_RUN(TestDeviceProtocol);
    UNIT_RUN(TestDeviceRefusals);
    UNIT_RUN(TestPulledBoard);
    UNIT_RUN(TestEndOfJob);
    UNIT_RUN(TestCompleteAndList);
    UNIT_RUN(TestManyCocs);
    rc = UNIT_DONE("mhsm");
    WorldDone();
    return rc;
}
