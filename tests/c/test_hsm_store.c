/*
 * test_hsm_store.c --
 *
 *	Unit tests of the engine's NVM: what survives a power cycle, the
 *	commit protocol under crashes (child processes killed at each
 *	durability step with SPPS_FAULT=crash-at-sync:N), rollback and
 *	tampering of every file type, the counter and max_updates_number,
 *	several processes on one HSM (locking, merging, transactions), the
 *	absence of plaintext keys on disk, the passphrase seal of the fuse,
 *	the random generator fault, and firmware blobs.
 *
 *	Children that must start with a fresh environment (SPPS_FAULT is read
 *	once per process) are this program run again with a --child-*
 *	argument.
 */

#include "unit.h"
#include "hsm_test.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CHECK_ERR(call, code)						\
    do {								\
	hsm_err_t unitE = (call);					\
	if (unitE != (code)) {						\
	    unitChecksFailed++;						\
	    fprintf(stderr, "%s:%d: %s: %s gave %s, expected %s (%s)\n",\
		    __FILE__, __LINE__, unitCurrent, #call,		\
		    hsm_spps_err_name(unitE), hsm_spps_err_name(code),	\
		    hsm_spps_last_error());				\
	}								\
    } while (0)

#define CHECK_DETAIL(substr)						\
    do {								\
	if (strstr(hsm_spps_last_error(), (substr)) == NULL) {		\
	    unitChecksFailed++;						\
	    fprintf(stderr, "%s:%d: %s: detail \"%s\" lacks \"%s\"\n",	\
		    __FILE__, __LINE__, unitCurrent,			\
		    hsm_spps_last_error(), (substr));			\
	}								\
    } while (0)

#define NONCE 0xC0FFEE

static char selfPath[PATH_MAX];

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* Session, key store (created if asked) and key management. */
typedef struct Open {
    hsm_hdl_t session, ks, km;
} Open;

static hsm_err_t
OpenAll(const char *dir, uint32_t store, int create, uint16_t maxUpdates,
	Open *o)
{
    hsm_err_t err;

    memset(o, 0, sizeof(*o));
    if ((o->session = Session(dir)) == 0) {
	return HSM_GENERAL_ERROR;
    }
    if ((err = KeyStore(o->session, store, NONCE, create, maxUpdates,
	    &o->ks)) != HSM_NO_ERROR) {
	hsm_close_session(o->session);
	o->session = 0;
	return err;
    }
    o->km = KeyMgmt(o->ks);
    return HSM_NO_ERROR;
}

static void
CloseAll(Open *o)
{
    if (o->session) {
	hsm_close_session(o->session);
    }
    memset(o, 0, sizeof(*o));
}

static uint16_t
Counter(hsm_hdl_t session)
{
    op_get_info_args_t a;
    uint32_t user, version, ext;
    uint16_t counter = 0xFFFF, lc;
    uint8_t chip[8], fips;

    a.user_sab_id = &user;
    a.chip_unique_id = chip;
    a.chip_monotonic_counter = &counter;
    a.chip_life_cycle = &lc;
    a.version = &version;
    a.version_ext = &ext;
    a.fips_mode = &fips;
    hsm_get_info(session, &a);
    return counter;
}

static void
PathIn(char *out, size_t len, const char *dir, const char *rel)
{
    snprintf(out, len, "%s/%s", dir, rel);
}

/* The name of the only file in dir/sub starting with prefix. */
static int
FindFile(const char *dir, const char *sub, const char *prefix, char *out,
	size_t len)
{
    char path[900], **names, **n;
    int found = 0;

    PathIn(path, sizeof(path), dir, sub);
    if (plat_list_dir(path, &names, NULL) != 0) {
	return 0;
    }
    for (n = names; *n != NULL; n++) {
	if (strncmp(*n, prefix, strlen(prefix)) == 0) {
	    snprintf(out, len, "%s/%s", sub, *n);
	    found++;
	}
    }
    plat_free_list(names);
    return found == 1;
}

/* Number of files in dir/sub. */
static int
CountFiles(const char *dir, const char *sub)
{
    char path[900], **names, **n;
    int count = 0;

    PathIn(path, sizeof(path), dir, sub);
    if (plat_list_dir(path, &names, NULL) != 0) {
	return -1;
    }
    for (n = names; *n != NULL; n++) {
	count++;
    }
    plat_free_list(names);
    return count;
}

/* Copies a state directory (two levels) to a new one. */
static void
CopyTree(const char *from, const char *to)
{
    char **names, **n;

    plat_mkdirs(to, 0700, NULL);
    if (plat_list_dir(from, &names, NULL) != 0) {
	return;
    }
    for (n = names; *n != NULL; n++) {
	char src[900], dst[900];

	PathIn(src, sizeof(src), from, *n);
	PathIn(dst, sizeof(dst), to, *n);
	if (plat_is_dir(src)) {
	    CopyTree(src, dst);
	} else {
	    size_t len;
	    uint8_t *data = Slurp(src, &len);

	    if (data != NULL) {
		Spit(dst, data, len);
		chmod(dst, 0600);
		free(data);
	    }
	}
    }
    plat_free_list(names);
}

/* Saves/restores one file of a state directory. */
typedef struct Saved {
    uint8_t *data;
    size_t len;
} Saved;

static void
Save(const char *dir, const char *rel, Saved *s)
{
    char path[900];

    PathIn(path, sizeof(path), dir, rel);
    s->data = Slurp(path, &s->len);
}

static void
Restore(const char *dir, const char *rel, Saved *s)
{
    char path[900];

    PathIn(path, sizeof(path), dir, rel);
    Spit(path, s->data, s->len);
}

static void
FlipByte(const char *dir, const char *rel, size_t at)
{
    char path[900];
    size_t len;
    uint8_t *data;

    PathIn(path, sizeof(path), dir, rel);
    data = Slurp(path, &len);
    if (data != NULL && len > 0) {
	data[at % len] ^= 0x01;
	Spit(path, data, len);
    }
    free(data);
}

/* Runs this program as a child with argv and env; returns its status. */
static int
RunChild(char *const argv[], const char *fault)
{
    pid_t pid;
    int status;

    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) == 0) {
	if (fault) {
	    setenv("SPPS_FAULT", fault, 1);
	} else {
	    unsetenv("SPPS_FAULT");
	}
	/* The injected crash announces itself on stderr: keep it quiet. */
	if (fault && freopen("/dev/null", "w", stderr) == NULL) {
	    _exit(3);
	}
	execv(selfPath, argv);
	_exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
	return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ------------------------------------------------------------------ */
/* Power cycle                                                          */
/* ------------------------------------------------------------------ */

static void
TestPowerCycle(void)
{
    char dir[600];
    Open o;
    uint32_t strictKey, lazyKey, transKey, delKey, updKey;
    SecretCopy before, after;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 1, 0,
	    CREATE | STRICT, &strictKey, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_256, 1, 0, CREATE | STRICT,
	    &delKey, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE | STRICT,
	    &updKey, NULL), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(o.ks, updKey, &before), HSM_NO_ERROR);
    CHECK_EQ(Counter(o.session), 3);
    /* Changes without STRICT. */
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE, &lazyKey,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 3, HSM_KEY_INFO_TRANSIENT,
	    CREATE, &transKey, NULL), HSM_NO_ERROR);
    CHECK_ERR(Delete(o.km, delKey, 0), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 0, 0, UPDATE, &updKey,
	    NULL), HSM_NO_ERROR);
    CHECK(!HasKey(o.ks, delKey));
    CHECK(HasKey(o.ks, lazyKey));
    CHECK_EQ(Counter(o.session), 3);
    CloseAll(&o);

    /* Power cycle: exactly the strict state. */
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, strictKey));
    CHECK(HasKey(o.ks, delKey));
    CHECK(!HasKey(o.ks, lazyKey));
    CHECK(!HasKey(o.ks, transKey));
    CHECK_ERR(KeySecret(o.ks, updKey, &after), HSM_NO_ERROR);
    CHECK_MEM(before.bytes, after.bytes, 16);
    CHECK_EQ(Counter(o.session), 3);

    /* A strict delete, a strict update: they stay. */
    CHECK_ERR(Delete(o.km, delKey, 1), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 0, 0, UPDATE | STRICT,
	    &updKey, NULL), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(o.ks, updKey, &before), HSM_NO_ERROR);
    /* Batching: several changes, one strict group write. */
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 5, 0, CREATE, &lazyKey,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 5, 0, CREATE, &transKey,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(Group(o.km, 5, HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION),
	    HSM_NO_ERROR);
    CHECK_EQ(Counter(o.session), 6);
    CloseAll(&o);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(!HasKey(o.ks, delKey));
    CHECK(HasKey(o.ks, lazyKey));
    CHECK(HasKey(o.ks, transKey));
    CHECK_ERR(KeySecret(o.ks, updKey, &after), HSM_NO_ERROR);
    CHECK_MEM(before.bytes, after.bytes, 16);
    /* Group 1 had its delete written: one key left in one file. */
    CHECK_EQ(CountFiles(dir, "ks-00000001"), 3);
    CloseAll(&o);
}

/* ------------------------------------------------------------------ */
/* Counter and max_updates_number                                       */
/* ------------------------------------------------------------------ */

static void
TestCounterExhaustion(void)
{
    char dir[600];
    Open o;
    hsm_hdl_t ks2, km2, ds;
    uint32_t id[4], other;
    open_svc_data_storage_args_t oa;
    op_data_storage_args_t da;
    uint8_t data[8] = "abcdefg";

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 1, 1, 2, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &id[0], NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &id[1], NULL), HSM_NO_ERROR);
    CHECK_EQ(Counter(o.session), 2);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &id[2], NULL), HSM_KEY_STORE_COUNTER);
    CHECK_DETAIL("not rollback-protected");
    CHECK(id[2] != 0 && id[2] != id[1]);
    CHECK_EQ(Counter(o.session), 2);
    memset(&oa, 0, sizeof(oa));
    CHECK_ERR(hsm_open_data_storage_service(o.ks, &oa, &ds), HSM_NO_ERROR);
    memset(&da, 0, sizeof(da));
    da.data = data;
    da.data_size = sizeof(data);
    da.data_id = 1;
    da.flags = HSM_OP_DATA_STORAGE_FLAGS_STORE;
    CHECK_ERR(hsm_data_storage(ds, &da), HSM_KEY_STORE_COUNTER);
    CHECK_EQ(Counter(o.session), 2);

    /* Another store is not limited and moves the counter. */
    CHECK_ERR(KeyStore(o.session, 2, NONCE, 1, 0, &ks2), HSM_NO_ERROR);
    km2 = KeyMgmt(ks2);
    CHECK_ERR(Generate(km2, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &other, NULL), HSM_NO_ERROR);
    CHECK_EQ(Counter(o.session), 3);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &id[3], NULL), HSM_KEY_STORE_COUNTER);
    CloseAll(&o);

    /* Everything was written. */
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, id[0]) && HasKey(o.ks, id[1]));
    CHECK(HasKey(o.ks, id[2]) && HasKey(o.ks, id[3]));
    CHECK_EQ(Counter(o.session), 3);
    CloseAll(&o);
}

/* ------------------------------------------------------------------ */
/* Rollback                                                             */
/* ------------------------------------------------------------------ */

static void
TestRollback(void)
{
    char dir[600], group[128], group2[128];
    Open o;
    hsm_hdl_t s;
    uint32_t id, id2;
    Saved oldGroup, oldManifest, oldOtp, m2, o2;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 5, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 3, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CHECK(FindFile(dir, "ks-00000005", "group-0003", group, sizeof(group)));
    Save(dir, group, &oldGroup);
    Save(dir, "manifest", &oldManifest);
    Save(dir, "otp", &oldOtp);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 3, 0, CREATE | STRICT, &id2,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 4, 0, CREATE | STRICT, &id2,
	    NULL), HSM_NO_ERROR);
    CloseAll(&o);
    CHECK(FindFile(dir, "ks-00000005", "group-0003", group2, sizeof(group2)));
    CHECK(strcmp(group, group2) != 0);
    CHECK(!plat_file_exists(group));

    /* An older group file under the current name. */
    Save(dir, group2, &m2);
    Restore(dir, group2, &oldGroup);
    CHECK_ERR(OpenAll(dir, 5, 0, 0, &o), HSM_NO_ERROR);
    CHECK(!HasKey(o.ks, id));
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 3, 0, CREATE, &id2, NULL),
	    HSM_KEY_STORE_ERROR);
    CHECK_DETAIL(group2);
    CHECK_DETAIL("rollback");
    CloseAll(&o);
    Restore(dir, group2, &m2);
    free(m2.data);

    /* An older manifest. */
    Save(dir, "manifest", &m2);
    Restore(dir, "manifest", &oldManifest);
    CHECK_EQ(Session(dir), 0);
    CHECK_DETAIL("file manifest");
    CHECK_DETAIL("older");
    /* The older manifest with its older group file: still older than the
     * counter. */
    Restore(dir, group, &oldGroup);
    CHECK_EQ(Session(dir), 0);
    CHECK_DETAIL("rollback refused");
    Restore(dir, "manifest", &m2);
    free(m2.data);

    /* An older otp. */
    Save(dir, "otp", &o2);
    Restore(dir, "otp", &oldOtp);
    CHECK_EQ(Session(dir), 0);
    CHECK_DETAIL("file otp");
    CHECK_DETAIL("older");
    Restore(dir, "otp", &o2);
    free(o2.data);

    /* All restored: it works again (and the stray group file is gone). */
    s = Session(dir);
    CHECK(s != 0);
    CHECK(!plat_file_exists(group));
    hsm_close_session(s);
    CHECK_ERR(OpenAll(dir, 5, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, id));
    CloseAll(&o);
    free(oldGroup.data);
    free(oldManifest.data);
    free(oldOtp.data);
}

/* ------------------------------------------------------------------ */
/* Tampering                                                            */
/* ------------------------------------------------------------------ */

static void
TestTamper(void)
{
    static const struct {
	const char *rel;
	hsm_err_t code;
	const char *detail;
    } devFiles[] = {
	{"fuse", HSM_NVM_ERROR, "file fuse"},
	{"otp", HSM_NVM_ERROR, "file otp"},
	{"manifest", HSM_NVM_ERROR, "file manifest"},
    };
    char dir[600], group[128], data[128], blob[128];
    Open o;
    hsm_hdl_t ds;
    uint32_t id;
    open_svc_data_storage_args_t oa;
    op_data_storage_args_t da;
    uint8_t bytes[40], *out;
    size_t i, at, len;
    hsm_err_t err;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 6, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_256, 0, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    memset(&oa, 0, sizeof(oa));
    hsm_open_data_storage_service(o.ks, &oa, &ds);
    memset(&da, 0, sizeof(da));
    RAND_bytes(bytes, sizeof(bytes));
    da.data = bytes;
    da.data_size = sizeof(bytes);
    da.data_id = 3;
    da.flags = HSM_OP_DATA_STORAGE_FLAGS_STORE;
    CHECK_ERR(hsm_data_storage(ds, &da), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_blob_write(o.session, "tickets", bytes, 8), HSM_NO_ERROR);
    CloseAll(&o);
    CHECK(FindFile(dir, "ks-00000006", "group-0000", group, sizeof(group)));
    CHECK(FindFile(dir, "ks-00000006", "data-00003", data, sizeof(data)));
    CHECK(FindFile(dir, "fw", "tickets.v", blob, sizeof(blob)));

    /* Device files: the session does not open. */
    for (i = 0; i < sizeof(devFiles) / sizeof(devFiles[0]); i++) {
	for (at = 0; at < 200; at += 37) {
	    Saved s;

	    Save(dir, devFiles[i].rel, &s);
	    FlipByte(dir, devFiles[i].rel, at);
	    CHECK_EQ(Session(dir), 0);
	    CHECK_DETAIL(devFiles[i].detail);
	    Restore(dir, devFiles[i].rel, &s);
	    free(s.data);
	}
    }

    /* Key store objects: refused when read. */
    for (at = 0; at < 100; at += 11) {
	Saved s;

	Save(dir, group, &s);
	FlipByte(dir, group, at);
	CHECK_ERR(OpenAll(dir, 6, 0, 0, &o), HSM_NO_ERROR);
	CHECK(!HasKey(o.ks, id));
	CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_256, 0, 0, UPDATE, &id, NULL),
		HSM_KEY_STORE_ERROR);
	CHECK_DETAIL(group);
	CloseAll(&o);
	Restore(dir, group, &s);
	free(s.data);

	Save(dir, data, &s);
	FlipByte(dir, data, at);
	CHECK_ERR(OpenAll(dir, 6, 0, 0, &o), HSM_NO_ERROR);
	hsm_open_data_storage_service(o.ks, &oa, &ds);
	da.flags = 0;
	da.data = bytes;
	da.data_size = sizeof(bytes);
	CHECK_ERR(hsm_data_storage(ds, &da), HSM_KEY_STORE_ERROR);
	CHECK_DETAIL(data);
	CloseAll(&o);
	Restore(dir, data, &s);
	free(s.data);

	Save(dir, blob, &s);
	FlipByte(dir, blob, at);
	o.session = Session(dir);
	CHECK_ERR(hsm_fw_blob_read(o.session, "tickets", &out, &len),
		HSM_NVM_ERROR);
	CHECK_DETAIL(blob);
	CloseAll(&o);
	Restore(dir, blob, &s);
	free(s.data);
    }

    /* A file of another HSM, even well formed, is not authentic here. */
    {
	char other[600], otherGroup[128];
	Saved s;
	Open p;
	uint32_t pid;

	NewDir(other, sizeof(other));
	CHECK_ERR(OpenAll(other, 6, 1, 0, &p), HSM_NO_ERROR);
	CHECK_ERR(Generate(p.km, HSM_KEY_TYPE_AES_256, 0, 0, CREATE | STRICT,
		&pid, NULL), HSM_NO_ERROR);
	CloseAll(&p);
	CHECK(FindFile(other, "ks-00000006", "group-0000", otherGroup,
		sizeof(otherGroup)));
	Save(other, "otp", &s);
	Restore(dir, "otp", &s);
	free(s.data);
	CHECK_EQ(Session(dir), 0);
	CHECK_DETAIL("another HSM");
	Save(other, "fuse", &s);
	Restore(dir, "fuse", &s);
	free(s.data);
	CHECK_EQ(Session(dir), 0);
    }

    /* Missing files. */
    {
	char path[900];
	Saved s;

	NewDir(dir, sizeof(dir));
	CHECK_ERR(OpenAll(dir, 6, 1, 0, &o), HSM_NO_ERROR);
	CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_256, 0, 0, CREATE | STRICT,
		&id, NULL), HSM_NO_ERROR);
	CloseAll(&o);
	CHECK(FindFile(dir, "ks-00000006", "group-0000", group, sizeof(group)));
	Save(dir, group, &s);
	PathIn(path, sizeof(path), dir, group);
	remove(path);
	CHECK_ERR(OpenAll(dir, 6, 0, 0, &o), HSM_NO_ERROR);
	err = Generate(o.km, HSM_KEY_TYPE_AES_256, 0, 0, UPDATE, &id, NULL);
	CHECK_EQ(err, HSM_KEY_STORE_ERROR);
	CHECK_DETAIL("missing");
	CloseAll(&o);
	Restore(dir, group, &s);
	free(s.data);
	Save(dir, "otp", &s);
	PathIn(path, sizeof(path), dir, "otp");
	remove(path);
	CHECK_EQ(Session(dir), 0);
	CHECK_DETAIL("otp is missing");
	Restore(dir, "otp", &s);
	free(s.data);
	Save(dir, "fuse", &s);
	PathIn(path, sizeof(path), dir, "fuse");
	remove(path);
	CHECK_EQ(Session(dir), 0);
	CHECK_DETAIL("fuse is missing");
	Restore(dir, "fuse", &s);
	free(s.data);
	CHECK_ERR(OpenAll(dir, 6, 0, 0, &o), HSM_NO_ERROR);
	CHECK(HasKey(o.ks, id));
	CloseAll(&o);
    }
}

/* ------------------------------------------------------------------ */
/* No plaintext on disk                                                 */
/* ------------------------------------------------------------------ */

/*
 * Contains --
 *	Whether hay holds the needle, or any 8 bytes in a row of it (a key
 *	half written, or cut across two records, is found too).
 */
static int
Contains(const uint8_t *hay, size_t hayLen, const uint8_t *needle, size_t n)
{
    size_t i, j, w = n < 8 ? n : 8;

    for (j = 0; j + w <= n; j++) {
	for (i = 0; i + w <= hayLen; i++) {
	    if (memcmp(hay + i, needle + j, w) == 0) {
		return 1;
	    }
	}
    }
    return 0;
}

/* Counts the files under dir (recursively) holding the needle. */
static int
FilesHolding(const char *dir, const uint8_t *needle, size_t n, int *files)
{
    char **names, **p;
    int found = 0;

    if (plat_list_dir(dir, &names, NULL) != 0) {
	return 0;
    }
    for (p = names; *p != NULL; p++) {
	char path[900];

	PathIn(path, sizeof(path), dir, *p);
	if (plat_is_dir(path)) {
	    found += FilesHolding(path, needle, n, files);
	} else {
	    size_t len;
	    uint8_t *data = Slurp(path, &len);

	    (*files)++;
	    if (data != NULL && Contains(data, len, needle, n)) {
		found++;
	    }
	    free(data);
	}
    }
    plat_free_list(names);
    return found;
}

/*
 * TestNoPlaintext --
 *	Every key generated (every supported type, a master key and a key
 *	derived from it by butterfly expansion) or imported (under the
 *	part-unique root KEK, the common root KEK and a KEK of the key store),
 *	and the root KEK: no file of the state directory holds any 8 bytes in
 *	a row of them, before and after a power cycle.  A control file shows
 *	the scan finds what it looks for.
 */
static void
TestNoPlaintext(void)
{
    static const hsm_key_type_t types[] = {
	HSM_KEY_TYPE_ECDSA_NIST_P256, HSM_KEY_TYPE_ECDSA_NIST_P384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384,
	HSM_KEY_TYPE_AES_128, HSM_KEY_TYPE_AES_192, HSM_KEY_TYPE_AES_256
    };
    char dir[600];
    Open o;
    uint32_t ids[24], master, kekId;
    SecretCopy c;
    uint8_t root[32], common[32], key[32], kek[32], wrapped[64], fk[32];
    uint8_t pub[64];
    op_export_root_kek_args_t a;
    op_butt_key_exp_args_t b;
    size_t i, n = 0;
    int files = 0;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 7, 1, 0, &o), HSM_NO_ERROR);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
	CHECK_ERR(Generate(o.km, types[i], (uint16_t) i, 0, CREATE | STRICT,
		&ids[n++], NULL), HSM_NO_ERROR);
    }
    memset(&a, 0, sizeof(a));
    a.out_root_kek = root;
    a.root_kek_size = 32;
    CHECK_ERR(hsm_export_root_key_encryption_key(o.session, &a), HSM_NO_ERROR);
    RAND_bytes(key, 32);
    CHECK_ERR(Import(o.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, 0, HSM_KEY_TYPE_AES_256,
	    1, HSM_KEY_INFO_KEK, wrapped, Wrap(root, key, 32, wrapped),
	    &ids[n++]), HSM_NO_ERROR);
    memcpy(kek, key, 32);
    kekId = ids[n - 1];
    RAND_bytes(key, 32);
    key[0] &= 0x7F;
    CHECK_ERR(Import(o.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, 0,
	    HSM_KEY_TYPE_ECDSA_NIST_P256, 9, 0, wrapped,
	    Wrap(root, key, 32, wrapped), &ids[n++]), HSM_NO_ERROR);

    /* Imported under the common root KEK and under the key store's KEK. */
    a.out_root_kek = common;
    a.flags = HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK;
    CHECK_ERR(hsm_export_root_key_encryption_key(o.session, &a), HSM_NO_ERROR);
    RAND_bytes(key, 32);
    CHECK_ERR(Import(o.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, 0, HSM_KEY_TYPE_AES_256,
	    10, 0, wrapped, Wrap(common, key, 32, wrapped), &ids[n++]),
	    HSM_NO_ERROR);
    RAND_bytes(key, 24);
    CHECK_ERR(Import(o.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, kekId,
	    HSM_KEY_TYPE_AES_192, 10, 0, wrapped, Wrap(kek, key, 24, wrapped),
	    &ids[n++]), HSM_NO_ERROR);

    /* A key derived by butterfly expansion from a generated master key. */
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 11,
	    HSM_KEY_INFO_MASTER, CREATE | STRICT, &master, NULL), HSM_NO_ERROR);
    ids[n++] = master;
    RAND_bytes(fk, sizeof(fk));
    memset(&b, 0, sizeof(b));
    b.key_identifier = master;
    b.expansion_function_value = fk;
    b.expansion_function_value_size = 32;
    b.flags = HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION;
    b.dest_key_identifier = &ids[n++];
    b.output = pub;
    b.output_size = 64;
    b.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    b.key_group = 12;
    CHECK_ERR(hsm_butterfly_key_expansion(o.km, &b), HSM_NO_ERROR);
    for (i = 0; i < n; i++) {
	CHECK_ERR(KeySecret(o.ks, ids[i], &c), HSM_NO_ERROR);
	CHECK_EQ(FilesHolding(dir, c.bytes, c.len, &files), 0);
    }
    CHECK_EQ(FilesHolding(dir, root, 32, &files), 0);
    CHECK(files > 5 * (int) n);
    CloseAll(&o);
    /* The same after a power cycle, and the scan finds what it looks for. */
    CHECK_ERR(OpenAll(dir, 7, 0, 0, &o), HSM_NO_ERROR);
    for (i = 0; i < n; i++) {
	CHECK_ERR(KeySecret(o.ks, ids[i], &c), HSM_NO_ERROR);
	CHECK_EQ(FilesHolding(dir, c.bytes, c.len, &files), 0);
	if (i == n - 1) {
	    uint8_t control[12] = "ab";
	    char path[900];
	    FILE *f;

	    memcpy(control + 2, c.bytes + 3, 8);
	    PathIn(path, sizeof(path), dir, "control");
	    f = fopen(path, "wb");
	    CHECK(f != NULL && fwrite(control, 1, 10, f) == 10);
	    if (f != NULL) {
		fclose(f);
	    }
	    CHECK_EQ(FilesHolding(dir, c.bytes, c.len, &files), 1);
	    remove(path);
	}
    }
    CloseAll(&o);
}

/* ------------------------------------------------------------------ */
/* Crash consistency                                                    */
/* ------------------------------------------------------------------ */

/* Child: replace key id of store 1 with the given bytes, strictly. */
static int
ChildUpdate(const char *dir, const char *idText, const char *hex)
{
    Open o;
    uint8_t common[32], key[16], wrapped[64];
    op_export_root_kek_args_t a;
    uint32_t id = (uint32_t) strtoul(idText, NULL, 16);
    int i;

    for (i = 0; i < 16; i++) {
	sscanf(hex + 2 * i, "%2hhx", &key[i]);
    }
    if (OpenAll(dir, 1, 0, 0, &o) != HSM_NO_ERROR) {
	return 2;
    }
    memset(&a, 0, sizeof(a));
    a.out_root_kek = common;
    a.root_kek_size = 32;
    a.flags = HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK;
    if (hsm_export_root_key_encryption_key(o.session, &a) != HSM_NO_ERROR
	    || Import(o.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE
		| HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK
		| HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, 0,
		HSM_KEY_TYPE_AES_128, 0, 0, wrapped,
		Wrap(common, key, 16, wrapped), &id) != HSM_NO_ERROR) {
	fprintf(stderr, "child: %s\n", hsm_spps_last_error());
	return 2;
    }
    CloseAll(&o);
    return 0;
}

/* Child: write blob "count" with the given text, a strict firmware write. */
static int
ChildBlob(const char *dir, const char *text)
{
    hsm_hdl_t s = Session(dir);

    if (s == 0 || hsm_fw_blob_write(s, "count", (const uint8_t *) text,
	    strlen(text)) != HSM_NO_ERROR) {
	return 2;
    }
    hsm_close_session(s);
    return 0;
}

static void
TestCrash(void)
{
    char base[600], dir[600], idText[16], hex[40], sub[32];
    uint8_t oldKey[16], newKey[16];
    Open o;
    uint32_t id, other;
    SecretCopy c;
    int n, status, sawOld = 0, sawNew = 0;

    NewDir(base, sizeof(base));
    CHECK_ERR(OpenAll(base, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_256, 2, 0, CREATE | STRICT,
	    &other, NULL), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(o.ks, id, &c), HSM_NO_ERROR);
    memcpy(oldKey, c.bytes, 16);
    CHECK_ERR(hsm_fw_blob_write(o.session, "count", (const uint8_t *) "old", 3),
	    HSM_NO_ERROR);
    CloseAll(&o);
    RAND_bytes(newKey, 16);
    snprintf(idText, sizeof(idText), "%08x", (unsigned) id);
    for (n = 0; n < 16; n++) {
	snprintf(hex + 2 * n, 3, "%02x", newKey[n]);
    }
    snprintf(sub, sizeof(sub), "%s", "ks-00000001");

    /*
     * The update commits in 9 durability steps: the group file (sync,
     * rename, directory sync), the manifest (the same three; its rename,
     * step 5, is the commit point), the otp (three).  A crash before
     * step N leaves the old state for N <= 5 and the new one after.
     */
    for (n = 1; n <= 10; n++) {
	char fault[32];
	char *argv[] = {selfPath, (char *) "--child-update", dir, idText, hex,
	    NULL};

	NewDir(dir, sizeof(dir));
	CopyTree(base, dir);
	snprintf(fault, sizeof(fault), "crash-at-sync:%d", n);
	status = RunChild(argv, fault);
	CHECK_EQ(status, n <= 9 ? 86 : 0);
	if (OpenAll(dir, 1, 0, 0, &o) != HSM_NO_ERROR) {
	    fprintf(stderr, "crash at step %d: %s\n", n, hsm_spps_last_error());
	    CHECK(0);
	    continue;
	}
	CHECK_ERR(KeySecret(o.ks, id, &c), HSM_NO_ERROR);
	if (n <= 5) {
	    CHECK_MEM(c.bytes, oldKey, 16);
	    sawOld++;
	} else {
	    CHECK_MEM(c.bytes, newKey, 16);
	    sawNew++;
	}
	CHECK(HasKey(o.ks, other));
	CHECK_EQ(Counter(o.session), n <= 5 ? 3 : 4);
	/* No orphan: one group file, no temporary files. */
	CHECK_EQ(CountFiles(dir, sub), 1);
	CHECK_EQ(CountFiles(dir, ""), 6);	/* fuse otp manifest lock ks fw */
	CloseAll(&o);
    }
    CHECK_EQ(sawOld, 5);
    CHECK_EQ(sawNew, 5);

    /* The same for a firmware blob (a ticket counter). */
    for (n = 1; n <= 10; n++) {
	char fault[32];
	char *argv[] = {selfPath, (char *) "--child-blob", dir,
	    (char *) "new", NULL};
	uint8_t *data = NULL;
	size_t len = 0;
	hsm_hdl_t s;

	NewDir(dir, sizeof(dir));
	CopyTree(base, dir);
	snprintf(fault, sizeof(fault), "crash-at-sync:%d", n);
	status = RunChild(argv, fault);
	CHECK_EQ(status, n <= 9 ? 86 : 0);
	s = Session(dir);
	CHECK_ERR(hsm_fw_blob_read(s, "count", &data, &len), HSM_NO_ERROR);
	CHECK_EQ(len, 3);
	CHECK(data != NULL && memcmp(data, n <= 5 ? "old" : "new", 3) == 0);
	free(data);
	CHECK_EQ(CountFiles(dir, "fw"), 1);
	hsm_close_session(s);
    }
}

/* ------------------------------------------------------------------ */
/* Processes                                                            */
/* ------------------------------------------------------------------ */

#define CHILDREN 4
#define KEYS_EACH 6

static void
TestProcesses(void)
{
    char dir[600];
    Open o, p;
    uint32_t ids[CHILDREN * KEYS_EACH], mine, theirs, pending;
    int pipes[2], i, k, got = 0, status;
    pid_t pids[CHILDREN];

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
	    &mine, NULL), HSM_NO_ERROR);
    CloseAll(&o);

    /* Children creating keys in one group at the same time. */
    CHECK(pipe(pipes) == 0);
    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < CHILDREN; i++) {
	if ((pids[i] = fork()) == 0) {
	    Open c;
	    uint32_t id[KEYS_EACH];

	    close(pipes[0]);
	    if (OpenAll(dir, 1, 0, 0, &c) != HSM_NO_ERROR) {
		_exit(2);
	    }
	    for (k = 0; k < KEYS_EACH; k++) {
		if (Generate(c.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
			&id[k], NULL) != HSM_NO_ERROR) {
		    fprintf(stderr, "child %d: %s\n", i, hsm_spps_last_error());
		    _exit(3);
		}
	    }
	    CloseAll(&c);
	    if (write(pipes[1], id, sizeof(id)) != (ssize_t) sizeof(id)) {
		_exit(4);
	    }
	    _exit(0);
	}
    }
    close(pipes[1]);
    for (i = 0; i < CHILDREN; i++) {
	CHECK(waitpid(pids[i], &status, 0) == pids[i]);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    while (got < CHILDREN * KEYS_EACH
	    && read(pipes[0], &ids[got], KEYS_EACH * sizeof(uint32_t))
	    == (ssize_t) (KEYS_EACH * sizeof(uint32_t))) {
	got += KEYS_EACH;
    }
    close(pipes[0]);
    CHECK_EQ(got, CHILDREN * KEYS_EACH);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, mine));
    for (i = 0; i < got; i++) {
	CHECK(HasKey(o.ks, ids[i]));
    }
    CHECK_EQ(Counter(o.session), 1 + CHILDREN * KEYS_EACH);
    CHECK_EQ(CountFiles(dir, "ks-00000001"), 1);

    /* Merge: this process has a pending key in group 1 and writes after
     * another process wrote group 1; both keys stay. */
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE, &pending,
	    NULL), HSM_NO_ERROR);
    if ((pids[0] = fork()) == 0) {
	Open c;

	if (OpenAll(dir, 1, 0, 0, &c) != HSM_NO_ERROR
		|| Generate(c.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT,
			&theirs, NULL) != HSM_NO_ERROR
		|| Delete(c.km, mine, 1) != HSM_NO_ERROR) {
	    _exit(2);
	}
	CloseAll(&c);
	_exit(0);
    }
    CHECK(waitpid(pids[0], &status, 0) == pids[0]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Not seen yet: a cached group is used as it is until the next NVM
     * access of this process. */
    CHECK(HasKey(o.ks, mine));
    CHECK_ERR(Group(o.km, 1, HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION),
	    HSM_NO_ERROR);
    CHECK(HasKey(o.ks, pending));
    CHECK(!HasKey(o.ks, mine));
    for (i = 0; i < got; i++) {
	CHECK(HasKey(o.ks, ids[i]));
    }
    CloseAll(&o);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &p), HSM_NO_ERROR);
    CHECK(HasKey(p.ks, pending));
    CHECK(!HasKey(p.ks, mine));
    CHECK_EQ(Counter(p.session), 1 + CHILDREN * KEYS_EACH + 3);
    CloseAll(&p);
}

/* Child: n increments of the blob "counter", each in a transaction. */
static hsm_err_t
Increment(hsm_hdl_t s, void *ctx)
{
    uint8_t *data = NULL;
    size_t len = 0;
    unsigned long v = 0;
    char text[32];
    hsm_err_t err = hsm_fw_blob_read(s, "counter", &data, &len);

    (void) ctx;
    if (err == HSM_NO_ERROR && len < sizeof(text)) {
	memcpy(text, data, len);
	text[len] = '\0';
	v = strtoul(text, NULL, 10);
    } else if (err != HSM_UNKNOWN_ID) {
	free(data);
	return err;
    }
    free(data);
    snprintf(text, sizeof(text), "%lu", v + 1);
    return hsm_fw_blob_write(s, "counter", (const uint8_t *) text,
	    strlen(text));
}

static int
ChildIncrement(const char *dir, const char *count)
{
    hsm_hdl_t s = Session(dir);
    int i, n = atoi(count);

    for (i = 0; i < n; i++) {
	if (hsm_fw_transaction(s, Increment, NULL) != HSM_NO_ERROR) {
	    fprintf(stderr, "child: %s\n", hsm_spps_last_error());
	    return 2;
	}
    }
    hsm_close_session(s);
    return 0;
}

static void
TestTransactions(void)
{
    char dir[600];
    pid_t pids[CHILDREN];
    hsm_hdl_t s;
    uint8_t *data = NULL;
    size_t len = 0;
    int i, status;

    NewDir(dir, sizeof(dir));
    s = Session(dir);
    hsm_close_session(s);
    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < CHILDREN; i++) {
	if ((pids[i] = fork()) == 0) {
	    _exit(ChildIncrement(dir, "10"));
	}
    }
    for (i = 0; i < CHILDREN; i++) {
	CHECK(waitpid(pids[i], &status, 0) == pids[i]);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    s = Session(dir);
    CHECK_ERR(hsm_fw_blob_read(s, "counter", &data, &len), HSM_NO_ERROR);
    CHECK(len == 2 && data != NULL && memcmp(data, "40", 2) == 0);
    free(data);
    CHECK_EQ(Counter(s), 40);
    CHECK_ERR(hsm_fw_transaction(s, NULL, NULL), HSM_INVALID_ADDRESS);
    hsm_close_session(s);
}

/* ------------------------------------------------------------------ */
/* Blobs                                                                */
/* ------------------------------------------------------------------ */

static void
TestBlobs(void)
{
    char dir[600], file[128];
    hsm_hdl_t s;
    uint8_t *data;
    size_t len;
    char **names;
    Saved old;

    NewDir(dir, sizeof(dir));
    s = Session(dir);
    CHECK_ERR(hsm_fw_blob_read(s, "a", &data, &len), HSM_UNKNOWN_ID);
    CHECK_ERR(hsm_fw_blob_write(s, "m.tickets", (const uint8_t *) "100", 3),
	    HSM_NO_ERROR);
    CHECK(FindFile(dir, "fw", "m.tickets", file, sizeof(file)));
    Save(dir, file, &old);
    CHECK_ERR(hsm_fw_blob_write(s, "m.tickets", (const uint8_t *) "99", 2),
	    HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_blob_write(s, "u.key", NULL, 0), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_blob_write(s, "m.other", (const uint8_t *) "x", 1),
	    HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_blob_read(s, "m.tickets", &data, &len), HSM_NO_ERROR);
    CHECK(len == 2 && memcmp(data, "99", 2) == 0);
    free(data);
    CHECK_ERR(hsm_fw_blob_read(s, "u.key", &data, &len), HSM_NO_ERROR);
    CHECK_EQ(len, 0);
    free(data);
    CHECK_ERR(hsm_fw_blob_list(s, "m.", &names), HSM_NO_ERROR);
    CHECK(names[0] && strcmp(names[0], "m.other") == 0);
    CHECK(names[1] && strcmp(names[1], "m.tickets") == 0);
    CHECK(names[2] == NULL);
    plat_free_list(names);
    CHECK_ERR(hsm_fw_blob_list(s, NULL, &names), HSM_NO_ERROR);
    CHECK(names[3] == NULL);
    plat_free_list(names);
    CHECK_ERR(hsm_fw_blob_delete(s, "m.other"), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_blob_delete(s, "m.other"), HSM_UNKNOWN_ID);
    CHECK_EQ(CountFiles(dir, "fw"), 2);
    CHECK_EQ(Counter(s), 5);

    /* Names. */
    CHECK_ERR(hsm_fw_blob_write(s, "a/b", (const uint8_t *) "x", 1),
	    HSM_INVALID_PARAM);
    CHECK_ERR(hsm_fw_blob_write(s, "", (const uint8_t *) "x", 1),
	    HSM_INVALID_PARAM);
    CHECK_ERR(hsm_fw_blob_write(s, "..", (const uint8_t *) "x", 1),
	    HSM_INVALID_PARAM);
    CHECK_ERR(hsm_fw_blob_write(s, NULL, (const uint8_t *) "x", 1),
	    HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_fw_blob_write(s, "ok", NULL, 1), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_fw_blob_read(s, "ok", NULL, &len), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_fw_blob_list(s, "", NULL), HSM_INVALID_ADDRESS);
    hsm_close_session(s);

    /* The older blob put back (a ticket counter rolled back). */
    CHECK(FindFile(dir, "fw", "m.tickets", file, sizeof(file)));
    Restore(dir, file, &old);
    s = Session(dir);
    CHECK_ERR(hsm_fw_blob_read(s, "m.tickets", &data, &len), HSM_NVM_ERROR);
    CHECK_DETAIL("rollback");
    CHECK_DETAIL(file);
    hsm_close_session(s);
    free(old.data);
}

/* ------------------------------------------------------------------ */
/* Fuse seal, random generator fault, garbage                           */
/* ------------------------------------------------------------------ */

static void
TestPassphrase(void)
{
    char dir[600], path[900];
    hsm_hdl_t s;
    Open o;
    uint32_t id;
    struct stat st;

    NewDir(dir, sizeof(dir));
    setenv("SPPS_HSM_PASSPHRASE", "correct horse", 1);
    CHECK_ERR(OpenAll(dir, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CloseAll(&o);
    PathIn(path, sizeof(path), dir, "fuse");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    unsetenv("SPPS_HSM_PASSPHRASE");
    CHECK_EQ(Session(dir), 0);
    CHECK_DETAIL("SPPS_HSM_PASSPHRASE");
    setenv("SPPS_HSM_PASSPHRASE", "wrong horse", 1);
    CHECK_EQ(Session(dir), 0);
    CHECK_DETAIL("wrong");
    setenv("SPPS_HSM_PASSPHRASE", "correct horse", 1);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, id));
    CloseAll(&o);
    unsetenv("SPPS_HSM_PASSPHRASE");

    /* An unsealed fuse is still 0600. */
    NewDir(dir, sizeof(dir));
    s = Session(dir);
    CHECK(s != 0);
    hsm_close_session(s);
    PathIn(path, sizeof(path), dir, "fuse");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
}

static void
TestRngFault(void)
{
    char dir[600], fresh[600];
    Open o;
    uint32_t id;
    hsm_hdl_t s;
    open_session_args_t a;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CloseAll(&o);
    setenv("SPPS_FAULT", "other,rng-fail", 1);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, id));
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE, &id, NULL),
	    HSM_RNG_NOT_STARTED);
    CHECK_DETAIL("rng-fail");
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, UPDATE, &id, NULL),
	    HSM_RNG_NOT_STARTED);
    CloseAll(&o);
    memset(&a, 0, sizeof(a));
    CHECK_ERR(hsm_spps_open_session_at(NewDir(fresh, sizeof(fresh)), &a, &s),
	    HSM_RNG_NOT_STARTED);
    unsetenv("SPPS_FAULT");
}

static void
TestGarbage(void)
{
    char dir[600], path[900];
    Open o;
    uint32_t id;

    NewDir(dir, sizeof(dir));
    CHECK_ERR(OpenAll(dir, 1, 1, 0, &o), HSM_NO_ERROR);
    CHECK_ERR(Generate(o.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CloseAll(&o);
    PathIn(path, sizeof(path), dir, "ks-00000001/group-0001.v999");
    Spit(path, (const uint8_t *) "x", 1);
    PathIn(path, sizeof(path), dir, "manifest.tmp4242");
    Spit(path, (const uint8_t *) "x", 1);
    PathIn(path, sizeof(path), dir, "README");
    Spit(path, (const uint8_t *) "mine", 4);
    CHECK_ERR(OpenAll(dir, 1, 0, 0, &o), HSM_NO_ERROR);
    CHECK(HasKey(o.ks, id));
    CloseAll(&o);
    CHECK_EQ(CountFiles(dir, "ks-00000001"), 1);
    PathIn(path, sizeof(path), dir, "manifest.tmp4242");
    CHECK(!plat_file_exists(path));
    PathIn(path, sizeof(path), dir, "README");
    CHECK(plat_file_exists(path));
}

int
main(int argc, char **argv)
{
    if (realpath(argv[0], selfPath) == NULL) {
	snprintf(selfPath, sizeof(selfPath), "%s", argv[0]);
    }
    if (argc == 5 && strcmp(argv[1], "--child-update") == 0) {
	return ChildUpdate(argv[2], argv[3], argv[4]);
    }
    if (argc == 4 && strcmp(argv[1], "--child-blob") == 0) {
	return ChildBlob(argv[2], argv[3]);
    }
    TestRootInit("store");
    UNIT_RUN(TestPowerCycle);
    UNIT_RUN(TestCounterExhaustion);
    UNIT_RUN(TestRollback);
    UNIT_RUN(TestTamper);
    UNIT_RUN(TestNoPlaintext);
    UNIT_RUN(TestCrash);
    UNIT_RUN(TestProcesses);
    UNIT_RUN(TestTransactions);
    UNIT_RUN(TestBlobs);
    UNIT_RUN(TestPassphrase);
    UNIT_RUN(TestRngFault);
    UNIT_RUN(TestGarbage);
    TestRootDone();
    return UNIT_DONE("hsm_store");
}
