/*
 * test_hsm_core.c --
 *
 *	Unit tests of the engine's core in one process: sessions and
 *	handles, key stores, key generation, import, update and deletion
 *	with the key info rules, key groups and the cache, transient keys,
 *	the butterfly expansion against BN arithmetic, root KEKs and the
 *	lifecycle, data storage, get_info, and the error vocabulary.
 *	Persistence, processes and the NVM are in test_hsm_store.c.
 */

#include "unit.h"
#include "hsm_test.h"
#include "hsm_int.h"

#include <pthread.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

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

/* An open session, key store and key management service. */
typedef struct Fix {
    char dir[600];
    hsm_hdl_t session, ks, km;
} Fix;

static void
FixOpen(Fix *f, uint32_t storeId)
{
    NewDir(f->dir, sizeof(f->dir));
    f->session = Session(f->dir);
    f->ks = f->km = 0;
    if (KeyStore(f->session, storeId, 0x1234, 1, 0, &f->ks) != HSM_NO_ERROR) {
	fprintf(stderr, "key store: %s\n", hsm_spps_last_error());
    }
    f->km = KeyMgmt(f->ks);
}

static void
FixClose(Fix *f)
{
    hsm_close_session(f->session);
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

static void
TestErrorNames(void)
{
    static const hsm_err_t codes[] = {
	HSM_NO_ERROR, HSM_INVALID_MESSAGE, HSM_INVALID_ADDRESS,
	HSM_UNKNOWN_ID, HSM_INVALID_PARAM, HSM_NVM_ERROR, HSM_OUT_OF_MEMORY,
	HSM_UNKNOWN_HANDLE, HSM_UNKNOWN_KEY_STORE, HSM_KEY_STORE_AUTH,
	HSM_KEY_STORE_ERROR, HSM_ID_CONFLICT, HSM_RNG_NOT_STARTED,
	HSM_CMD_NOT_SUPPORTED, HSM_INVALID_LIFECYCLE, HSM_KEY_STORE_CONFLICT,
	HSM_KEY_STORE_COUNTER, HSM_FEATURE_NOT_SUPPORTED, HSM_GENERAL_ERROR
    };
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
	CHECK(strncmp(hsm_spps_err_name(codes[i]), "HSM_", 4) == 0);
	CHECK(strcmp(hsm_spps_err_name(codes[i]), "HSM_UNKNOWN_ERROR") != 0);
	CHECK(strlen(hsm_spps_err_text(codes[i])) > 5);
    }
    CHECK(strcmp(hsm_spps_err_name(HSM_KEY_STORE_AUTH),
	    "HSM_KEY_STORE_AUTH") == 0);
    CHECK(strcmp(hsm_spps_err_name((hsm_err_t) 0x77), "HSM_UNKNOWN_ERROR") == 0);
    CHECK(hsm_spps_err_text((hsm_err_t) 0x77) != NULL);
}

/* ------------------------------------------------------------------ */
/* Sessions and handles                                                 */
/* ------------------------------------------------------------------ */

static void
TestSessions(void)
{
    char dir[600];
    hsm_hdl_t s1, s2, ks = 0, km, km2, ks2 = 0;
    open_svc_key_management_args_t kma;

    NewDir(dir, sizeof(dir));
    s1 = Session(dir);
    s2 = Session(dir);
    CHECK(s1 != 0 && s2 != 0 && s1 != s2);
    CHECK(plat_is_dir(dir));

    /* Unknown handles, wrong kinds. */
    CHECK_ERR(hsm_close_session(0xFFFFFF), HSM_UNKNOWN_HANDLE);
    CHECK_DETAIL("not open");
    CHECK_ERR(KeyStore(0xFFFFFF, 1, 1, 1, 0, &ks), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(KeyStore(s1, 1, 1, 1, 0, &ks), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_session(ks), HSM_UNKNOWN_HANDLE);
    CHECK_DETAIL("key store service, not a session");
    memset(&kma, 0, sizeof(kma));
    CHECK_ERR(hsm_open_key_management_service(s1, &kma, &km), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(hsm_open_key_management_service(ks, NULL, &km), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_open_key_management_service(ks, &kma, NULL), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_spps_open_session_at(dir, NULL, NULL), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_spps_open_session_at(NULL, NULL, &km), HSM_INVALID_ADDRESS);

    /* Closing a session closes its tree. */
    km = KeyMgmt(ks);
    km2 = KeyMgmt(ks);
    CHECK(km != 0 && km2 != 0 && km != km2);
    CHECK_ERR(hsm_close_key_management_service(km2), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_key_management_service(km2), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(hsm_close_session(s1), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_key_management_service(km), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(hsm_close_key_store_service(ks), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(hsm_close_session(s1), HSM_UNKNOWN_HANDLE);
    CHECK(strcmp(hsm_spps_last_error(), "") != 0);

    /* The other session is untouched; handles are never reused. */
    CHECK_ERR(KeyStore(s2, 2, 1, 1, 0, &ks2), HSM_NO_ERROR);
    CHECK(ks2 > km2 && ks2 != s1 && ks2 != ks && ks2 != km);
    CHECK(strcmp(hsm_spps_last_error(), "") == 0);
    /* The state directory, by its canonical name. */
    CHECK(hsm_fw_state_dir(s2) != NULL
	    && strstr(hsm_fw_state_dir(s2), strrchr(dir, '/')) != NULL);
    CHECK(hsm_fw_state_dir(s1) == NULL);
    CHECK_ERR(hsm_close_session(s2), HSM_NO_ERROR);
}

static void
TestDefaultDir(void)
{
    char dir[600], env[700];
    hsm_hdl_t s;
    open_session_args_t a;

    memset(&a, 0, sizeof(a));
    NewDir(dir, sizeof(dir));
    CHECK_ERR(hsm_spps_set_state_dir(dir), HSM_NO_ERROR);
    CHECK_ERR(hsm_open_session(&a, &s), HSM_NO_ERROR);
    CHECK(plat_file_exists(dir));
    hsm_close_session(s);
    CHECK_ERR(hsm_spps_set_state_dir(""), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_spps_set_state_dir(NULL), HSM_NO_ERROR);

    NewDir(dir, sizeof(dir));
    setenv("SPPS_HSM_DIR", dir, 1);
    CHECK_ERR(hsm_open_session(&a, &s), HSM_NO_ERROR);
    CHECK(plat_file_exists(dir));
    hsm_close_session(s);
    unsetenv("SPPS_HSM_DIR");

    NewDir(dir, sizeof(dir));
    setenv("SPPS_HOME", dir, 1);
    CHECK_ERR(hsm_open_session(&a, &s), HSM_NO_ERROR);
    snprintf(env, sizeof(env), "%s/hsm/default/fuse", dir);
    CHECK(plat_file_exists(env));
    hsm_close_session(s);
    unsetenv("SPPS_HOME");
}

/* ------------------------------------------------------------------ */
/* Key stores                                                           */
/* ------------------------------------------------------------------ */

static void
TestKeyStores(void)
{
    char dir[600];
    hsm_hdl_t s, ks, ks2, km;
    open_svc_key_store_args_t a;
    uint8_t msg[4] = {0};
    uint32_t id;

    NewDir(dir, sizeof(dir));
    s = Session(dir);
    CHECK_ERR(KeyStore(s, 7, 99, 0, 0, &ks), HSM_UNKNOWN_KEY_STORE);
    CHECK_DETAIL("key store 7");
    CHECK_ERR(KeyStore(s, 7, 99, 1, 0, &ks), HSM_NO_ERROR);
    /* Not in the NVM until a strict operation. */
    CHECK_ERR(KeyStore(s, 7, 99, 0, 0, &ks2), HSM_UNKNOWN_KEY_STORE);
    km = KeyMgmt(ks);
    CHECK_ERR(Generate(km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(KeyStore(s, 7, 99, 0, 0, &ks2), HSM_NO_ERROR);
    CHECK(HasKey(ks2, id));
    CHECK_ERR(KeyStore(s, 7, 98, 0, 0, &ks2), HSM_KEY_STORE_AUTH);
    CHECK_DETAIL("nonce");
    CHECK_ERR(KeyStore(s, 7, 99, 1, 0, &ks2), HSM_KEY_STORE_CONFLICT);

    memset(&a, 0, sizeof(a));
    a.key_store_identifier = 8;
    a.flags = HSM_SVC_KEY_STORE_FLAGS_UPDATE;
    CHECK_ERR(hsm_open_key_store_service(s, &a, &ks2), HSM_CMD_NOT_SUPPORTED);
    a.flags = HSM_SVC_KEY_STORE_FLAGS_DELETE;
    CHECK_ERR(hsm_open_key_store_service(s, &a, &ks2), HSM_CMD_NOT_SUPPORTED);
    a.flags = HSM_SVC_KEY_STORE_FLAGS_CREATE;
    a.signed_message = msg;
    a.signed_msg_size = sizeof(msg);
    CHECK_ERR(hsm_open_key_store_service(s, &a, &ks2), HSM_CMD_NOT_SUPPORTED);
    CHECK_DETAIL("reprovisioning");
    a.signed_message = NULL;
    a.signed_msg_size = 0;
    a.flags = 0x40;
    CHECK_ERR(hsm_open_key_store_service(s, &a, &ks2), HSM_INVALID_PARAM);
    a.flags = HSM_SVC_KEY_STORE_FLAGS_CREATE;
    a.key_store_identifier = HSM_FW_KEY_STORE_BASE + 3;
    CHECK_ERR(hsm_open_key_store_service(s, &a, &ks2), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_open_key_store_service(s, NULL, &ks2), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_open_key_store_service(s, &a, NULL), HSM_INVALID_ADDRESS);
    hsm_close_session(s);
}

/* ------------------------------------------------------------------ */
/* Key generation                                                       */
/* ------------------------------------------------------------------ */

/* The public key of the scalar, x || y, for comparison. */
static int
PublicOf(hsm_key_type_t type, const uint8_t *scalar, size_t len, uint8_t *xy)
{
    const char *curve = type == HSM_KEY_TYPE_ECDSA_NIST_P256 ? "P-256"
	    : type == HSM_KEY_TYPE_ECDSA_NIST_P384 ? "P-384"
	    : type == HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256 ? "brainpoolP256r1"
	    : type == HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384 ? "brainpoolP384r1"
	    : "brainpoolP384t1";
    int nid = EC_curve_nist2nid(curve);
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid != NID_undef ? nid
	    : OBJ_sn2nid(curve));
    EC_POINT *p = EC_POINT_new(g);
    BIGNUM *k = BN_bin2bn(scalar, (int) len, NULL);
    uint8_t buf[1 + 2 * 48];
    size_t n;
    int ok;

    ok = EC_POINT_mul(g, p, k, NULL, NULL, NULL)
	    && (n = EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, buf,
		    sizeof(buf), NULL)) == 1 + 2 * len;
    if (ok) {
	memcpy(xy, buf + 1, 2 * len);
    }
    BN_free(k);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return ok;
}

static void
TestGenerate(void)
{
    static const hsm_key_type_t types[] = {
	HSM_KEY_TYPE_ECDSA_NIST_P256, HSM_KEY_TYPE_ECDSA_NIST_P384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384, HSM_KEY_TYPE_AES_128,
	HSM_KEY_TYPE_AES_192, HSM_KEY_TYPE_AES_256
    };
    Fix f;
    uint32_t id, id2, ids[8];
    uint8_t pub[96], pub2[96];
    SecretCopy c, c2;
    op_generate_key_args_t a;
    size_t i;

    FixOpen(&f, 1);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
	CHECK_ERR(Generate(f.km, types[i], 2, 0, CREATE, &ids[i], pub),
		HSM_NO_ERROR);
	CHECK(ids[i] != 0);
	CHECK_ERR(KeySecret(f.ks, ids[i], &c), HSM_NO_ERROR);
	CHECK_EQ(c.type, types[i]);
	if (types[i] < HSM_KEY_TYPE_AES_128) {
	    CHECK(PublicOf(types[i], c.bytes, c.len, pub2));
	    CHECK_MEM(pub, pub2, 2 * c.len);
	} else {
	    CHECK_EQ(c.len, types[i] == HSM_KEY_TYPE_AES_128 ? 16
		    : types[i] == HSM_KEY_TYPE_AES_192 ? 24 : 32);
	}
    }
    for (i = 1; i < 8; i++) {
	CHECK(ids[i] != ids[i - 1]);
    }

    /* Unsupported and unknown types. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P224, 2, 0, CREATE, &id,
	    pub), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_DETAIL("ECDSA_NIST_P224");
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_224, 2, 0, CREATE,
	    &id, pub), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_224, 2, 0, CREATE,
	    &id, pub), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256, 2, 0, CREATE,
	    &id, pub), HSM_FEATURE_NOT_SUPPORTED);
    CHECK_ERR(Generate(f.km, 0x77, 2, 0, CREATE, &id, pub), HSM_INVALID_PARAM);

    /* Flags, sizes, pointers, groups, info. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 2, 0, 0, &id, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE | UPDATE, &id,
	    NULL), HSM_INVALID_PARAM);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE | 0x10, &id,
	    NULL), HSM_INVALID_PARAM);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 1024, 0, CREATE, &id, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("1024");
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_256, 2, HSM_KEY_INFO_KEK, CREATE,
	    &id, NULL), HSM_INVALID_PARAM);
    CHECK_DETAIL("imported");
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_256, 2, 0x100, CREATE, &id, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE, NULL, NULL),
	    HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_generate_key(f.km, NULL), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_generate_key(f.ks, NULL), HSM_INVALID_ADDRESS);
    memset(&a, 0, sizeof(a));
    a.key_identifier = &id;
    a.flags = CREATE;
    a.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    a.out_size = 63;
    a.out_key = pub;
    CHECK_ERR(hsm_generate_key(f.km, &a), HSM_INVALID_PARAM);
    CHECK_DETAIL("out_size is 63");
    a.out_size = 64;
    a.out_key = NULL;
    CHECK_ERR(hsm_generate_key(f.km, &a), HSM_INVALID_ADDRESS);
    a.key_type = HSM_KEY_TYPE_AES_128;
    a.out_size = 16;
    CHECK_ERR(hsm_generate_key(f.km, &a), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_generate_key(f.ks, &a), HSM_UNKNOWN_HANDLE);

    /* Update: same type only, new bytes, same id. */
    id = ids[0];
    CHECK_ERR(KeySecret(f.ks, id, &c), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 0, 0, UPDATE, &id,
	    pub), HSM_NO_ERROR);
    CHECK_EQ(id, ids[0]);
    CHECK_ERR(KeySecret(f.ks, id, &c2), HSM_NO_ERROR);
    CHECK(memcmp(c.bytes, c2.bytes, c.len) != 0);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P384, 0, 0, UPDATE, &id,
	    pub), HSM_ID_CONFLICT);
    CHECK_DETAIL("ECDSA_NIST_P256");
    id2 = 0x5eed;
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 0, 0, UPDATE, &id2, NULL),
	    HSM_UNKNOWN_ID);
    CHECK_DETAIL("0x00005eed");
    id2 = 0;
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 0, 0, UPDATE, &id2, NULL),
	    HSM_UNKNOWN_ID);

    /* Permanent keys are write-locked. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 3, HSM_KEY_INFO_PERMANENT,
	    CREATE, &id, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 0, 0, UPDATE, &id, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("PERMANENT");
    CHECK_ERR(Delete(f.km, id, 0), HSM_INVALID_PARAM);
    CHECK(HasKey(f.ks, id));
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Import and delete                                                    */
/* ------------------------------------------------------------------ */

static void
RootKek(hsm_hdl_t session, int common, uint8_t *kek)
{
    op_export_root_kek_args_t a;

    memset(&a, 0, sizeof(a));
    a.out_root_kek = kek;
    a.root_kek_size = 32;
    a.flags = common ? HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK : 0;
    if (hsm_export_root_key_encryption_key(session, &a) != HSM_NO_ERROR) {
	fprintf(stderr, "root kek: %s\n", hsm_spps_last_error());
    }
}

static void
TestImport(void)
{
    Fix f;
    uint8_t root[32], common[32], kekBytes[32], aes[32], scalar[32];
    uint8_t wrapped[64], bad[64];
    size_t n;
    uint32_t kek, id, id2;
    SecretCopy c;
    op_manage_key_args_t a;

    FixOpen(&f, 2);
    RootKek(f.session, 0, root);
    RootKek(f.session, 1, common);
    CHECK(memcmp(root, common, 32) != 0);

    /* A KEK under the part-unique root KEK. */
    RAND_bytes(kekBytes, 32);
    n = Wrap(root, kekBytes, 32, wrapped);
    CHECK_EQ(n, 60);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK, 0,
	    HSM_KEY_TYPE_AES_256, 4, HSM_KEY_INFO_KEK, wrapped, n, &kek),
	    HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, kek, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, kekBytes, 32);
    CHECK_EQ(c.info, HSM_KEY_INFO_KEK);

    /* An AES key under that KEK, then under the common root KEK. */
    RAND_bytes(aes, 32);
    n = Wrap(kekBytes, aes, 16, wrapped);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, id, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, aes, 16);
    n = Wrap(common, aes + 16, 16, wrapped);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK, 0, HSM_KEY_TYPE_AES_128,
	    0, 0, wrapped, n, &id), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, id, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, aes + 16, 16);

    /* An EC private scalar: the public key follows. */
    RAND_bytes(scalar, 32);
    scalar[0] &= 0x7F;
    n = Wrap(kekBytes, scalar, 32, wrapped);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION, kek,
	    HSM_KEY_TYPE_ECDSA_NIST_P256, 5, 0, wrapped, n, &id2), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, id2, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, scalar, 32);
    memset(scalar, 0xFF, 32);		/* >= n: not a private key */
    n = Wrap(kekBytes, scalar, 32, wrapped);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_ECDSA_NIST_P256, 5, 0, wrapped, n, &id2),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("private key");

    /* Refusals. */
    n = Wrap(kekBytes, aes, 16, wrapped);
    memcpy(bad, wrapped, n);
    bad[20] ^= 1;
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, bad, n, &id2), HSM_INVALID_PARAM);
    CHECK_DETAIL("does not decrypt");
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n - 1, &id2), HSM_INVALID_PARAM);
    CHECK_DETAIL("input_size is 43");
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, id,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id2), HSM_INVALID_PARAM);
    CHECK_DETAIL("KEK attribute");
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, 0x77777777,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id2), HSM_UNKNOWN_ID);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id2), HSM_INVALID_PARAM);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK, 0,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id2), HSM_INVALID_PARAM);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, wrapped, n, &id2), HSM_INVALID_PARAM);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, 0, NULL, n, &id2), HSM_INVALID_ADDRESS);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_AES_128, 4, HSM_KEY_INFO_KEK, wrapped, n, &id2),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("AES_256");
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE, kek,
	    HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256, 4, 0, wrapped, n, &id2),
	    HSM_FEATURE_NOT_SUPPORTED);
    id2 = id;
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE, kek,
	    HSM_KEY_TYPE_AES_128, 3, 0, wrapped, n, &id2), HSM_INVALID_PARAM);
    CHECK_DETAIL("key_group must be 0");
    n = Wrap(kekBytes, aes, 24, wrapped);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE, kek,
	    HSM_KEY_TYPE_AES_192, 0, 0, wrapped, n, &id2), HSM_ID_CONFLICT);
    CHECK_ERR(hsm_manage_key(f.km, NULL), HSM_INVALID_ADDRESS);
    memset(&a, 0, sizeof(a));
    a.flags = HSM_OP_MANAGE_KEY_FLAGS_DELETE;
    CHECK_ERR(hsm_manage_key(f.km, &a), HSM_INVALID_ADDRESS);

    /* Delete. */
    CHECK_ERR(Delete(f.km, id, 0), HSM_NO_ERROR);
    CHECK(!HasKey(f.ks, id));
    CHECK_ERR(Delete(f.km, id, 0), HSM_UNKNOWN_ID);
    a.key_identifier = &kek;
    a.input_size = 4;
    CHECK_ERR(hsm_manage_key(f.km, &a), HSM_INVALID_PARAM);
    CHECK(HasKey(f.ks, kek));
    CHECK_ERR(Delete(f.km, kek, 1), HSM_NO_ERROR);
    CHECK(!HasKey(f.ks, kek));
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Key groups and the cache                                             */
/* ------------------------------------------------------------------ */

static void
TestGroups(void)
{
    Fix f;
    uint32_t id[6], t;
    SecretCopy c;
    int i;

    FixOpen(&f, 3);
    /* Four groups written and evicted in turn: keys still found. */
    for (i = 0; i < 5; i++) {
	CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, (uint16_t) (10 + i), 0,
		CREATE | STRICT, &id[i], NULL), HSM_NO_ERROR);
    }
    for (i = 0; i < 5; i++) {
	CHECK(HasKey(f.ks, id[i]));
    }
    /* Dirty groups are written to make room. */
    for (i = 0; i < 5; i++) {
	CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, (uint16_t) (20 + i), 0,
		CREATE, &id[i], NULL), HSM_NO_ERROR);
    }
    for (i = 0; i < 5; i++) {
	CHECK(HasKey(f.ks, id[i]));
    }

    /* Lockdown fills the cache: a fourth group cannot come in. */
    CHECK_ERR(Group(f.km, 30, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN),
	    HSM_NO_ERROR);
    CHECK_ERR(Group(f.km, 31, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN),
	    HSM_NO_ERROR);
    CHECK_ERR(Group(f.km, 32, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN),
	    HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 33, 0, CREATE, &t, NULL),
	    HSM_OUT_OF_MEMORY);
    CHECK_DETAIL("cache is full");
    CHECK_ERR(KeySecret(f.ks, id[0], &c), HSM_OUT_OF_MEMORY);
    /* Keys of locked groups work; transient groups do not count. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 30, 0, CREATE, &t, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 40, HSM_KEY_INFO_TRANSIENT,
	    CREATE, &t, NULL), HSM_NO_ERROR);
    CHECK_ERR(Group(f.km, 31, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK),
	    HSM_NO_ERROR);
    CHECK(HasKey(f.ks, id[0]));

    /* Flag errors. */
    CHECK_ERR(Group(f.km, 30, HSM_OP_MANAGE_KEY_GROUP_FLAGS_DELETE),
	    HSM_CMD_NOT_SUPPORTED);
    CHECK_ERR(Group(f.km, 30, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN
	    | HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK), HSM_INVALID_PARAM);
    CHECK_ERR(Group(f.km, 1024, HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK),
	    HSM_INVALID_PARAM);
    CHECK_ERR(Group(f.km, 30, 0), HSM_INVALID_PARAM);
    CHECK_ERR(Group(f.km, 30, 0x20), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_manage_key_group(f.km, NULL), HSM_INVALID_ADDRESS);

    /* Transient and persistent keys never share a group. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 40, 0, CREATE, &t, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("transient");
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 10, HSM_KEY_INFO_TRANSIENT,
	    CREATE, &t, NULL), HSM_INVALID_PARAM);
    FixClose(&f);
}

static void
TestGroupFull(void)
{
    Fix f;
    uint32_t id;
    int i, n = 0;
    hsm_err_t err = HSM_NO_ERROR;

    FixOpen(&f, 4);
    /* 16 KiB: 4 + 40 bytes per P-256 key: 409 keys fit. */
    for (i = 0; i < 500 && err == HSM_NO_ERROR; i++) {
	err = Generate(f.km, HSM_KEY_TYPE_AES_256, 7, 0, CREATE, &id, NULL);
	n += err == HSM_NO_ERROR;
    }
    CHECK_EQ(err, HSM_OUT_OF_MEMORY);
    CHECK_DETAIL("key group 7 of key store 4 is full");
    CHECK_EQ(n, (16384 - 4) / 40);
    CHECK_ERR(Group(f.km, 7, HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION),
	    HSM_NO_ERROR);
    FixClose(&f);
}

static void
TestTransient(void)
{
    Fix f;
    uint32_t t, p;
    hsm_hdl_t ks2;

    FixOpen(&f, 5);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 1,
	    HSM_KEY_INFO_TRANSIENT, CREATE | STRICT, &t, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 2, 0, CREATE | STRICT, &p,
	    NULL), HSM_NO_ERROR);
    CHECK(HasKey(f.ks, t));
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 0, 0, UPDATE, &t,
	    NULL), HSM_INVALID_PARAM);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 0,
	    HSM_KEY_INFO_TRANSIENT, UPDATE, &t, NULL), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_key_store_service(f.ks), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_key_management_service(f.km), HSM_UNKNOWN_HANDLE);
    CHECK_ERR(KeyStore(f.session, 5, 0x1234, 0, 0, &ks2), HSM_NO_ERROR);
    CHECK(!HasKey(ks2, t));
    CHECK(HasKey(ks2, p));
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Butterfly expansion                                                  */
/* ------------------------------------------------------------------ */

static void
Expected(const char *curve, const uint8_t *k, const uint8_t *fk,
	const uint8_t *h, const uint8_t *pv, size_t len, uint8_t *out)
{
    int nid = EC_curve_nist2nid(curve);
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid != NID_undef ? nid
	    : OBJ_sn2nid(curve));
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *a = BN_bin2bn(k, (int) len, NULL), *b = BN_bin2bn(fk, (int) len, NULL);
    BIGNUM *r = BN_new();

    BN_mod_add(r, a, b, EC_GROUP_get0_order(g), ctx);
    if (h != NULL) {
	BIGNUM *bh = BN_bin2bn(h, (int) len, NULL), *bp = BN_bin2bn(pv, (int) len, NULL);

	BN_mod_mul(r, r, bh, EC_GROUP_get0_order(g), ctx);
	BN_mod_add(r, r, bp, EC_GROUP_get0_order(g), ctx);
	BN_free(bh);
	BN_free(bp);
    }
    BN_bn2binpad(r, out, (int) len);
    BN_free(a);
    BN_free(b);
    BN_free(r);
    BN_CTX_free(ctx);
    EC_GROUP_free(g);
}

static void
TestButterfly(void)
{
    Fix f;
    uint32_t master, plain, dest, dest2;
    uint8_t fk[48], h[48], pv[48], want[48], pub[96], pub2[96];
    SecretCopy m, c;
    op_butt_key_exp_args_t a;

    FixOpen(&f, 6);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 1,
	    HSM_KEY_INFO_MASTER, CREATE, &master, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 1, 0, CREATE,
	    &plain, NULL), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, master, &m), HSM_NO_ERROR);
    RAND_bytes(fk, sizeof(fk));
    RAND_bytes(h, sizeof(h));
    RAND_bytes(pv, sizeof(pv));

    /* Explicit. */
    memset(&a, 0, sizeof(a));
    a.key_identifier = master;
    a.expansion_function_value = fk;
    a.expansion_function_value_size = 32;
    a.flags = HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF;
    a.dest_key_identifier = &dest;
    a.output = pub;
    a.output_size = 64;
    a.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    a.key_group = 2;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_NO_ERROR);
    Expected("P-256", m.bytes, fk, NULL, NULL, 32, want);
    CHECK_ERR(KeySecret(f.ks, dest, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, want, 32);
    CHECK(PublicOf(HSM_KEY_TYPE_ECDSA_NIST_P256, want, 32, pub2));
    CHECK_MEM(pub, pub2, 64);

    /* Implicit, as an update of the same key, no public key output. */
    a.flags = HSM_OP_BUTTERFLY_KEY_FLAGS_UPDATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION;
    a.hash_value = h;
    a.hash_value_size = 32;
    a.pr_reconstruction_value = pv;
    a.pr_reconstruction_value_size = 32;
    a.output = NULL;
    a.output_size = 0;
    dest2 = dest;
    a.dest_key_identifier = &dest2;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_NO_ERROR);
    CHECK_EQ(dest2, dest);
    Expected("P-256", m.bytes, fk, h, pv, 32, want);
    CHECK_ERR(KeySecret(f.ks, dest, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, want, 32);

    /* Refusals. */
    a.key_identifier = plain;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);
    CHECK_DETAIL("MASTER");
    a.key_identifier = master;
    a.hash_value_size = 31;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);
    a.hash_value_size = 32;
    a.hash_value = NULL;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_ADDRESS);
    a.hash_value = h;
    a.key_type = HSM_KEY_TYPE_ECDSA_NIST_P384;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);
    a.key_type = HSM_KEY_TYPE_ECDSA_NIST_P256;
    a.flags |= HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);
    a.flags = HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE;
    a.output_size = 10;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);
    a.output_size = 0;
    a.expansion_function_value_size = 48;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_INVALID_PARAM);

    /* P-384 brainpool, explicit. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384, 1,
	    HSM_KEY_INFO_MASTER, CREATE, &master, NULL), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, master, &m), HSM_NO_ERROR);
    memset(&a, 0, sizeof(a));
    a.key_identifier = master;
    a.expansion_function_value = fk;
    a.expansion_function_value_size = 48;
    a.flags = HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF;
    a.dest_key_identifier = &dest;
    a.key_type = HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384;
    a.key_group = 2;
    a.output = pub;
    a.output_size = 96;
    CHECK_ERR(hsm_butterfly_key_expansion(f.km, &a), HSM_NO_ERROR);
    Expected("brainpoolP384r1", m.bytes, fk, NULL, NULL, 48, want);
    CHECK_ERR(KeySecret(f.ks, dest, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, want, 48);
    CHECK(PublicOf(HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384, want, 48, pub2));
    CHECK_MEM(pub, pub2, 96);
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Root KEK export and the lifecycle                                    */
/* ------------------------------------------------------------------ */

static void
SignExport(EVP_PKEY *owner, const uint8_t *chipId, uint8_t flags,
	uint8_t *rs)
{
    static const char label[] = HSM_SPPS_ROOT_KEK_EXPORT_LABEL;
    uint8_t msg[sizeof(label) - 1 + 9], der[80];
    const unsigned char *p = der;
    size_t derLen = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig;
    const BIGNUM *r, *s;

    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, chipId, 8);
    msg[sizeof(msg) - 1] = flags;
    EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, owner, NULL);
    EVP_DigestSign(md, der, &derLen, msg, sizeof(msg));
    sig = d2i_ECDSA_SIG(NULL, &p, (long) derLen);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, rs, 32);
    BN_bn2binpad(s, rs + 32, 32);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
}

static void
GetInfo(hsm_hdl_t s, uint8_t *chip, uint16_t *counter, uint16_t *lc)
{
    op_get_info_args_t a;
    uint32_t user, version, ext;
    uint8_t fips = 9;

    memset(&a, 0, sizeof(a));
    a.user_sab_id = &user;
    a.chip_unique_id = chip;
    a.chip_monotonic_counter = counter;
    a.chip_life_cycle = lc;
    a.version = &version;
    a.version_ext = &ext;
    a.fips_mode = &fips;
    if (hsm_get_info(s, &a) != HSM_NO_ERROR) {
	fprintf(stderr, "get_info: %s\n", hsm_spps_last_error());
    }
    CHECK_EQ(fips, 0);
    CHECK_EQ(version, 0x00020000);
}

static void
TestLifecycle(void)
{
    Fix f, g;
    uint8_t kek[32], kek2[32], chip[8], chip2[8], rs[64], xy[64], key[16];
    uint8_t wrapped[64];
    uint16_t counter, counter2, lc;
    uint32_t id;
    EVP_PKEY *owner = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIGNUM *x = NULL, *y = NULL;
    op_export_root_kek_args_t a;
    op_get_info_args_t ia;
    SecretCopy c;

    FixOpen(&f, 8);
    FixOpen(&g, 8);
    GetInfo(f.session, chip, &counter, &lc);
    GetInfo(g.session, chip2, &counter2, &lc);
    CHECK(memcmp(chip, chip2, 8) != 0);
    CHECK_EQ(lc, HSM_SPPS_LIFECYCLE_OEM_OPEN);
    CHECK_EQ(counter, 0);
    memset(&ia, 0, sizeof(ia));
    CHECK_ERR(hsm_get_info(f.session, &ia), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_get_info(f.session, NULL), HSM_INVALID_ADDRESS);

    /* Part-unique KEKs differ between HSMs, common ones do not. */
    RootKek(f.session, 0, kek);
    RootKek(g.session, 0, kek2);
    CHECK(memcmp(kek, kek2, 32) != 0);
    RootKek(f.session, 1, kek);
    RootKek(g.session, 1, kek2);
    CHECK_MEM(kek, kek2, 32);

    memset(&a, 0, sizeof(a));
    a.out_root_kek = kek;
    a.root_kek_size = 16;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_PARAM);
    a.root_kek_size = 32;
    a.out_root_kek = NULL;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_ADDRESS);
    a.out_root_kek = kek;
    a.flags = 0x80;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_PARAM);
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, NULL),
	    HSM_INVALID_ADDRESS);

    /* Close the lifecycle. */
    EVP_PKEY_get_bn_param(owner, OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(owner, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    BN_bn2binpad(x, xy, 32);
    BN_bn2binpad(y, xy + 32, 32);
    CHECK_ERR(hsm_spps_close_lifecycle(f.session, xy, 63), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_spps_close_lifecycle(f.session, NULL, 64),
	    HSM_INVALID_ADDRESS);
    xy[5] ^= 1;
    CHECK_ERR(hsm_spps_close_lifecycle(f.session, xy, 64), HSM_INVALID_PARAM);
    xy[5] ^= 1;
    CHECK_ERR(hsm_spps_close_lifecycle(f.session, xy, 64), HSM_NO_ERROR);
    CHECK_ERR(hsm_spps_close_lifecycle(f.session, xy, 64),
	    HSM_INVALID_LIFECYCLE);
    GetInfo(f.session, chip, &counter, &lc);
    CHECK_EQ(lc, HSM_SPPS_LIFECYCLE_OEM_CLOSED);
    CHECK_EQ(counter, 1);

    /* In OEM_CLOSED: no signature, a malformed one, a wrong one. */
    a.flags = 0;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_LIFECYCLE);
    CHECK_DETAIL("OEM_CLOSED");
    SignExport(owner, chip, 0, rs);
    a.signed_message = rs;
    a.signed_msg_size = 63;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_MESSAGE);
    a.signed_msg_size = 64;
    a.flags = HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_LIFECYCLE);
    a.flags = 0;
    rs[40] ^= 1;
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a),
	    HSM_INVALID_LIFECYCLE);
    rs[40] ^= 1;
    memset(kek, 0, 32);
    CHECK_ERR(hsm_export_root_key_encryption_key(f.session, &a), HSM_NO_ERROR);

    /* A key wrapped under the exported KEK imports. */
    RAND_bytes(key, sizeof(key));
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK, 0,
	    HSM_KEY_TYPE_AES_128, 0, 0, wrapped, Wrap(kek, key, 16, wrapped),
	    &id), HSM_NO_ERROR);
    CHECK_ERR(KeySecret(f.ks, id, &c), HSM_NO_ERROR);
    CHECK_MEM(c.bytes, key, 16);
    /* And one under another HSM's does not. */
    RootKek(g.session, 0, kek2);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK, 0,
	    HSM_KEY_TYPE_AES_128, 0, 0, wrapped, Wrap(kek2, key, 16, wrapped),
	    &id), HSM_INVALID_PARAM);
    BN_free(x);
    BN_free(y);
    EVP_PKEY_free(owner);
    FixClose(&f);
    FixClose(&g);
}

/* ------------------------------------------------------------------ */
/* Data storage                                                         */
/* ------------------------------------------------------------------ */

static void
TestDataStorage(void)
{
    Fix f;
    hsm_hdl_t ds, ks2, ds2;
    open_svc_data_storage_args_t oa;
    op_data_storage_args_t a;
    uint8_t data[300], back[300];
    uint16_t counter, lc;
    uint8_t chip[8];

    FixOpen(&f, 9);
    memset(&oa, 0, sizeof(oa));
    CHECK_ERR(hsm_open_data_storage_service(f.ks, &oa, &ds), HSM_NO_ERROR);
    CHECK_ERR(hsm_open_data_storage_service(f.ks, NULL, &ds2),
	    HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_open_data_storage_service(f.session, &oa, &ds2),
	    HSM_UNKNOWN_HANDLE);
    RAND_bytes(data, sizeof(data));
    memset(&a, 0, sizeof(a));
    a.data = data;
    a.data_size = sizeof(data);
    a.data_id = 12;
    a.flags = HSM_OP_DATA_STORAGE_FLAGS_STORE;
    CHECK_ERR(hsm_data_storage(ds, &a), HSM_NO_ERROR);
    GetInfo(f.session, chip, &counter, &lc);
    CHECK_EQ(counter, 1);

    /* Retrieve through another key store service. */
    CHECK_ERR(KeyStore(f.session, 9, 0x1234, 0, 0, &ks2), HSM_NO_ERROR);
    CHECK_ERR(hsm_open_data_storage_service(ks2, &oa, &ds2), HSM_NO_ERROR);
    memset(&a, 0, sizeof(a));
    a.data = back;
    a.data_size = 100;
    a.data_id = 12;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_INVALID_PARAM);
    CHECK_EQ(a.data_size, 300);
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_NO_ERROR);
    CHECK_MEM(back, data, 300);
    a.data_id = 13;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_UNKNOWN_ID);
    a.data = NULL;
    a.data_id = 12;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_INVALID_ADDRESS);
    a.flags = 0x42;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_INVALID_PARAM);
    a.flags = HSM_OP_DATA_STORAGE_FLAGS_STORE;
    a.data = data;
    a.data_size = 0;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_data_storage(ds2, NULL), HSM_INVALID_ADDRESS);
    /* Replace. */
    a.data_size = 5;
    CHECK_ERR(hsm_data_storage(ds2, &a), HSM_NO_ERROR);
    a.flags = 0;
    a.data = back;
    a.data_size = sizeof(back);
    CHECK_ERR(hsm_data_storage(ds, &a), HSM_NO_ERROR);
    CHECK_EQ(a.data_size, 5);
    CHECK_ERR(hsm_close_data_storage_service(ds), HSM_NO_ERROR);
    CHECK_ERR(hsm_close_data_storage_service(ds), HSM_UNKNOWN_HANDLE);
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Firmware key stores, derive, key use                                 */
/* ------------------------------------------------------------------ */

static hsm_err_t
FailingUse(const HsmFwKey *key, void *ctx)
{
    (void) key;
    (void) ctx;
    return hsm_fail(HSM_GENERAL_ERROR, "the role said no");
}

static void
TestFirmware(void)
{
    Fix f;
    hsm_hdl_t fw, fw2, km;
    uint32_t id;
    uint8_t d1[48], d2[48], d3[48];

    FixOpen(&f, 10);
    CHECK_ERR(hsm_fw_open_key_store(f.session, 3, &fw), HSM_NO_ERROR);
    km = KeyMgmt(fw);
    CHECK_ERR(Generate(km, HSM_KEY_TYPE_AES_256, 0, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_open_key_store(f.session, 3, &fw2), HSM_NO_ERROR);
    CHECK(HasKey(fw2, id));
    CHECK(!HasKey(f.ks, id));
    CHECK_ERR(hsm_fw_key_use(fw, id, FailingUse, NULL), HSM_GENERAL_ERROR);
    CHECK_DETAIL("the role said no");
    CHECK_ERR(hsm_fw_key_use(fw, id, NULL, NULL), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_fw_key_use(fw, 0x99, FailingUse, NULL), HSM_UNKNOWN_ID);
    CHECK_ERR(hsm_fw_open_key_store(f.session, 3, NULL), HSM_INVALID_ADDRESS);

    CHECK_ERR(hsm_fw_derive(f.session, "a", d1, 48), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_derive(f.session, "a", d2, 48), HSM_NO_ERROR);
    CHECK_ERR(hsm_fw_derive(f.session, "b", d3, 48), HSM_NO_ERROR);
    CHECK_MEM(d1, d2, 48);
    CHECK(memcmp(d1, d3, 48) != 0);
    CHECK_ERR(hsm_fw_derive(f.session, NULL, d1, 48), HSM_INVALID_ADDRESS);
    CHECK_ERR(hsm_fw_derive(f.session, "a", d1, 0), HSM_INVALID_PARAM);
    CHECK_ERR(hsm_fw_derive(0x7777777, "a", d1, 4), HSM_UNKNOWN_HANDLE);
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Key use checks of the operation bracket                              */
/* ------------------------------------------------------------------ */

static hsm_err_t
UseKey(hsm_hdl_t h, HsmKind kind, uint32_t id, HsmKeyUse use, int *hasPkey)
{
    HsmOp op;
    const HsmKey *k = NULL;
    hsm_err_t err = hsm_op_begin(h, kind, &op);

    if (err != HSM_NO_ERROR) {
	return err;
    }
    err = hsm_op_key(&op, id, use, &k);
    if (hasPkey != NULL) {
	*hasPkey = k != NULL && k->pkey != NULL;
    }
    return hsm_op_end(&op, err);
}

static void
TestKeyUse(void)
{
    Fix f;
    uint32_t aes, kek, master, p384;
    uint8_t root[32], kekBytes[32], wrapped[64];
    int pk = 0;

    FixOpen(&f, 13);
    RootKek(f.session, 0, root);
    RAND_bytes(kekBytes, 32);
    CHECK_ERR(Import(f.km, HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK, 0,
	    HSM_KEY_TYPE_AES_256, 1, HSM_KEY_INFO_KEK, wrapped,
	    Wrap(root, kekBytes, 32, wrapped), &kek), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE, &aes, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P256, 1,
	    HSM_KEY_INFO_MASTER, CREATE, &master, NULL), HSM_NO_ERROR);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_ECDSA_NIST_P384, 1, 0, CREATE,
	    &p384, NULL), HSM_NO_ERROR);

    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, aes, HSM_USE_CIPHER, &pk),
	    HSM_NO_ERROR);
    CHECK(!pk);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, aes, HSM_USE_MAC, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, aes, HSM_USE_SIGN, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("signature generation needs an EC key");
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, aes, HSM_USE_KEK, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, aes, HSM_USE_DERIVE, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, kek, HSM_USE_CIPHER, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("(KEK)");
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, kek, HSM_USE_MAC, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, kek, HSM_USE_KEK, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, master, HSM_USE_SIGN, &pk),
	    HSM_NO_ERROR);
    CHECK(pk);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, master, HSM_USE_ECIES, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, master, HSM_USE_PUBLIC, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, master, HSM_USE_DERIVE, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, master, HSM_USE_CIPHER, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, p384, HSM_USE_ECIES, NULL),
	    HSM_INVALID_PARAM);
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, p384, HSM_USE_DERIVE, NULL),
	    HSM_INVALID_PARAM);
    CHECK_DETAIL("MASTER");
    CHECK_ERR(UseKey(f.ks, HSM_KIND_KEY_STORE, 0x1234567, HSM_USE_CIPHER,
	    NULL), HSM_UNKNOWN_ID);
    /* Services under the key store use its keys; a session has none. */
    CHECK_ERR(UseKey(f.km, HSM_KIND_KEY_MANAGEMENT, aes, HSM_USE_CIPHER, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(UseKey(f.session, HSM_KIND_SESSION, aes, HSM_USE_CIPHER, NULL),
	    HSM_UNKNOWN_HANDLE);
    CHECK_ERR(UseKey(f.km, HSM_KIND_KEY_STORE, aes, HSM_USE_CIPHER, NULL),
	    HSM_UNKNOWN_HANDLE);
    FixClose(&f);
}

/* ------------------------------------------------------------------ */
/* Two services on one store, threads                                   */
/* ------------------------------------------------------------------ */

static void
TestTwoServices(void)
{
    Fix f;
    hsm_hdl_t ks2, km2;
    uint32_t a1, a2, b1, b2;
    SecretCopy c;

    FixOpen(&f, 11);
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &a1,
	    NULL), HSM_NO_ERROR);
    CHECK_ERR(KeyStore(f.session, 11, 0x1234, 0, 0, &ks2), HSM_NO_ERROR);
    km2 = KeyMgmt(ks2);
    CHECK(HasKey(ks2, a1));		/* group 1 now cached by both */

    /* A strict write by one is seen by the other. */
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &a2,
	    NULL), HSM_NO_ERROR);
    CHECK(HasKey(ks2, a2));

    /* Pending keys of both, written by both: all stay. */
    CHECK_ERR(Generate(km2, HSM_KEY_TYPE_AES_128, 1, 0, CREATE, &b1, NULL),
	    HSM_NO_ERROR);
    CHECK_ERR(Delete(km2, a1, 0), HSM_NO_ERROR);
    CHECK(!HasKey(ks2, a1));
    CHECK(HasKey(f.ks, a1));
    CHECK(!HasKey(f.ks, b1));
    CHECK_ERR(Generate(f.km, HSM_KEY_TYPE_AES_128, 1, 0, CREATE | STRICT, &b2,
	    NULL), HSM_NO_ERROR);
    CHECK(!HasKey(ks2, a1));		/* still deleted here */
    CHECK(HasKey(ks2, b2));
    CHECK_ERR(Group(km2, 1, HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION),
	    HSM_NO_ERROR);
    CHECK(HasKey(f.ks, b1));
    CHECK(!HasKey(f.ks, a1));
    CHECK(HasKey(f.ks, a2) && HasKey(f.ks, b2));
    CHECK_ERR(KeySecret(ks2, a2, &c), HSM_NO_ERROR);
    FixClose(&f);
}

#define THREADS 4
#define ROUNDS 12

typedef struct ThreadArg {
    const char *dir;
    int index;
    uint32_t strict[ROUNDS];
    int nStrict, failures;
} ThreadArg;

static void *
Worker(void *p)
{
    ThreadArg *t = p;
    hsm_hdl_t s = Session(t->dir), ks = 0, km;
    int i;

    if (KeyStore(s, 12, 5, 0, 0, &ks) != HSM_NO_ERROR) {
	t->failures++;
	return NULL;
    }
    km = KeyMgmt(ks);
    for (i = 0; i < ROUNDS; i++) {
	uint32_t id;
	int strict = i % 3 == 0;

	if (Generate(km, HSM_KEY_TYPE_AES_128, (uint16_t) (t->index % 2), 0,
		CREATE | (strict ? STRICT : 0), &id, NULL) != HSM_NO_ERROR
		|| !HasKey(ks, id)) {
	    t->failures++;
	    continue;
	}
	if (strict) {
	    t->strict[t->nStrict++] = id;
	}
	if (i == ROUNDS / 2) {
	    /* Close and reopen in the middle of it all. */
	    hsm_close_session(s);
	    s = Session(t->dir);
	    if (KeyStore(s, 12, 5, 0, 0, &ks) != HSM_NO_ERROR) {
		t->failures++;
		return NULL;
	    }
	    km = KeyMgmt(ks);
	}
    }
    hsm_close_session(s);
    return NULL;
}

static void
TestThreads(void)
{
    char dir[600];
    hsm_hdl_t s, ks, km;
    pthread_t th[THREADS];
    ThreadArg args[THREADS];
    uint32_t id;
    int i, j;

    NewDir(dir, sizeof(dir));
    s = Session(dir);
    CHECK_ERR(KeyStore(s, 12, 5, 1, 0, &ks), HSM_NO_ERROR);
    km = KeyMgmt(ks);
    CHECK_ERR(Generate(km, HSM_KEY_TYPE_AES_128, 0, 0, CREATE | STRICT, &id,
	    NULL), HSM_NO_ERROR);
    for (i = 0; i < THREADS; i++) {
	memset(&args[i], 0, sizeof(args[i]));
	args[i].dir = dir;
	args[i].index = i;
	CHECK(pthread_create(&th[i], NULL, Worker, &args[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
	pthread_join(th[i], NULL);
	CHECK_EQ(args[i].failures, 0);
    }
    hsm_close_session(s);
    s = Session(dir);
    CHECK_ERR(KeyStore(s, 12, 5, 0, 0, &ks), HSM_NO_ERROR);
    CHECK(HasKey(ks, id));
    for (i = 0; i < THREADS; i++) {
	for (j = 0; j < args[i].nStrict; j++) {
	    CHECK(HasKey(ks, args[i].strict[j]));
	}
    }
    hsm_close_session(s);
}

int
main(void)
{
    TestRootInit("core");
    UNIT_RUN(TestErrorNames);
    UNIT_RUN(TestSessions);
    UNIT_RUN(TestDefaultDir);
    UNIT_RUN(TestKeyStores);
    UNIT_RUN(TestGenerate);
    UNIT_RUN(TestImport);
    UNIT_RUN(TestGroups);
    UNIT_RUN(TestGroupFull);
    UNIT_RUN(TestTransient);
    UNIT_RUN(TestButterfly);
    UNIT_RUN(TestLifecycle);
    UNIT_RUN(TestDataStorage);
    UNIT_RUN(TestFirmware);
    UNIT_RUN(TestKeyUse);
    UNIT_RUN(TestTwoServices);
    UNIT_RUN(TestThreads);
    TestRootDone();
    return UNIT_DONE("hsm_core");
}
