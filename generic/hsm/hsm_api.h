/*
 * hsm_api.h --
 *
 *	The public C API of the spps software HSM engine.  It is the i.MX8 HSM
 *	API, revision 2.0 (seed 003): the same function names, types, flag
 *	values, structure fields and error codes, so that code written for
 *	that API runs on this engine.  Where the seed leaves a value out, the
 *	value of NXP's published header of the same revision is used (noted).
 *
 *	The engine adds a handful of functions, all named hsm_spps_*, for what
 *	a software HSM needs and the seed cannot say (where its state lives,
 *	what an error code means).  They are declared at the end.
 *
 *	Semantics in brief (docs/ARCHITECTURE.md has the whole story):
 *	- A session is opened on one HSM: a state directory.  Services are
 *	  opened on a session (rng, hash, signature verification) or on a key
 *	  store service (key management, cipher, signature generation, mac,
 *	  data storage).  Closing a handle closes everything opened under it.
 *	- Key store updates stay in memory until an operation with a
 *	  STRICT_OPERATION flag: then the key group is written to the NVM
 *	  (encrypted, authenticated, atomically and durably) and the monotonic
 *	  counter goes up by one.
 *	- No secret key ever leaves the engine in clear, except the root KEK
 *	  through hsm_export_root_key_encryption_key, as the seed specifies.
 */

#ifndef SPPS_HSM_API_H
#define SPPS_HSM_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Error codes                                                          */
/* ------------------------------------------------------------------ */

typedef enum {
    HSM_NO_ERROR              = 0x0,
    HSM_INVALID_MESSAGE       = 0x1,
    HSM_INVALID_ADDRESS       = 0x2,
    HSM_UNKNOWN_ID            = 0x3,
    HSM_INVALID_PARAM         = 0x4,
    HSM_NVM_ERROR             = 0x5,
    HSM_OUT_OF_MEMORY         = 0x6,
    HSM_UNKNOWN_HANDLE        = 0x7,
    HSM_UNKNOWN_KEY_STORE     = 0x8,
    HSM_KEY_STORE_AUTH        = 0x9,
    HSM_KEY_STORE_ERROR       = 0xA,
    HSM_ID_CONFLICT           = 0xB,
    HSM_RNG_NOT_STARTED       = 0xC,
    HSM_CMD_NOT_SUPPORTED     = 0xD,
    HSM_INVALID_LIFECYCLE     = 0xE,
    HSM_KEY_STORE_CONFLICT    = 0xF,
    HSM_KEY_STORE_COUNTER     = 0x10,
    HSM_FEATURE_NOT_SUPPORTED = 0x11,
    HSM_GENERAL_ERROR         = 0xFF
} hsm_err_t;

/* ------------------------------------------------------------------ */
/* Session                                                              */
/* ------------------------------------------------------------------ */

typedef uint32_t hsm_hdl_t;

typedef struct {
    uint8_t session_priority;	/* not used; any value accepted */
    uint8_t operating_mode;	/* not used; any value accepted */
    uint16_t reserved;
} open_session_args_t;

hsm_err_t hsm_open_session(open_session_args_t *args, hsm_hdl_t *session_hdl);
hsm_err_t hsm_close_session(hsm_hdl_t session_hdl);

/* ------------------------------------------------------------------ */
/* Key store                                                            */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_key_store_flags_t;
#define HSM_SVC_KEY_STORE_FLAGS_CREATE ((hsm_svc_key_store_flags_t)(1u << 0))
#define HSM_SVC_KEY_STORE_FLAGS_UPDATE ((hsm_svc_key_store_flags_t)(1u << 2))
#define HSM_SVC_KEY_STORE_FLAGS_DELETE ((hsm_svc_key_store_flags_t)(1u << 3))

typedef struct {
    uint32_t key_store_identifier;	/* user-defined id of the key store */
    uint32_t authentication_nonce;	/* proof of access, fixed at creation */
    uint16_t max_updates_number;	/* counter updates allowed (create only) */
    hsm_svc_key_store_flags_t flags;
    uint8_t reserved;
    uint8_t *signed_message;		/* reprovisioning only */
    uint16_t signed_msg_size;
    uint8_t reserved_1[2];
} open_svc_key_store_args_t;

hsm_err_t hsm_open_key_store_service(hsm_hdl_t session_hdl,
	open_svc_key_store_args_t *args, hsm_hdl_t *key_store_hdl);
hsm_err_t hsm_close_key_store_service(hsm_hdl_t key_store_hdl);

/* ------------------------------------------------------------------ */
/* Key management                                                       */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_key_management_flags_t;
typedef uint8_t hsm_op_key_gen_flags_t;
typedef uint8_t hsm_key_type_t;
typedef uint16_t hsm_key_info_t;
typedef uint16_t hsm_key_group_t;
typedef uint8_t hsm_op_manage_key_flags_t;
typedef uint8_t hsm_op_manage_key_group_flags_t;
typedef uint8_t hsm_op_but_key_exp_flags_t;

#define HSM_KEY_TYPE_ECDSA_NIST_P224         ((hsm_key_type_t)0x01) /* not supported */
#define HSM_KEY_TYPE_ECDSA_NIST_P256         ((hsm_key_type_t)0x02)
#define HSM_KEY_TYPE_ECDSA_NIST_P384         ((hsm_key_type_t)0x03)
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_224  ((hsm_key_type_t)0x12) /* not supported */
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256  ((hsm_key_type_t)0x13)
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384  ((hsm_key_type_t)0x15)
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_224  ((hsm_key_type_t)0x22) /* not supported */
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256  ((hsm_key_type_t)0x23) /* not supported */
#define HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384  ((hsm_key_type_t)0x25)
#define HSM_KEY_TYPE_AES_128                 ((hsm_key_type_t)0x30)
#define HSM_KEY_TYPE_AES_192                 ((hsm_key_type_t)0x31)
#define HSM_KEY_TYPE_AES_256                 ((hsm_key_type_t)0x32)

#define HSM_OP_KEY_GENERATION_FLAGS_UPDATE           ((hsm_op_key_gen_flags_t)(1u << 0))
#define HSM_OP_KEY_GENERATION_FLAGS_CREATE           ((hsm_op_key_gen_flags_t)(1u << 1))
#define HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION ((hsm_op_key_gen_flags_t)(1u << 7))

#define HSM_KEY_INFO_PERSISTENT ((hsm_key_info_t)(0u << 1))
#define HSM_KEY_INFO_PERMANENT  ((hsm_key_info_t)(1u << 0))
#define HSM_KEY_INFO_TRANSIENT  ((hsm_key_info_t)(1u << 1))
#define HSM_KEY_INFO_MASTER     ((hsm_key_info_t)(1u << 2))
#define HSM_KEY_INFO_KEK        ((hsm_key_info_t)(1u << 3))

#define HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE        ((hsm_op_manage_key_flags_t)(1u << 0))
#define HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE        ((hsm_op_manage_key_flags_t)(1u << 1))
#define HSM_OP_MANAGE_KEY_FLAGS_DELETE               ((hsm_op_manage_key_flags_t)(1u << 2))
#define HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK ((hsm_op_manage_key_flags_t)(1u << 3))
#define HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK      ((hsm_op_manage_key_flags_t)(1u << 4))
#define HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION     ((hsm_op_manage_key_flags_t)(1u << 7))

#define HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN   ((hsm_op_manage_key_group_flags_t)(1u << 0))
#define HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK     ((hsm_op_manage_key_group_flags_t)(1u << 1))
#define HSM_OP_MANAGE_KEY_GROUP_FLAGS_DELETE           ((hsm_op_manage_key_group_flags_t)(1u << 2))
#define HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION ((hsm_op_manage_key_group_flags_t)(1u << 7))

#define HSM_OP_BUTTERFLY_KEY_FLAGS_UPDATE           ((hsm_op_but_key_exp_flags_t)(1u << 0))
#define HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE           ((hsm_op_but_key_exp_flags_t)(1u << 1))
#define HSM_OP_BUTTERFLY_KEY_FLAGS_IMPLICIT_CERTIF  ((hsm_op_but_key_exp_flags_t)(0u << 2))
#define HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF  ((hsm_op_but_key_exp_flags_t)(1u << 2))
#define HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION ((hsm_op_but_key_exp_flags_t)(1u << 7))

/* Highest key group number (groups are 0..HSM_MAX_KEY_GROUP). */
#define HSM_MAX_KEY_GROUP 1023u

typedef struct {
    hsm_svc_key_management_flags_t flags;
    uint8_t reserved[3];
} open_svc_key_management_args_t;

typedef struct {
    uint32_t *key_identifier;	/* in: key to update; out: id of a new key */
    uint16_t out_size;		/* public key output size; 0 for symmetric keys */
    hsm_op_key_gen_flags_t flags;
    hsm_key_type_t key_type;
    hsm_key_group_t key_group;	/* 0..1023, create only */
    hsm_key_info_t key_info;
    uint8_t *out_key;		/* public key x||y (asymmetric keys) */
} op_generate_key_args_t;

typedef struct {
    uint32_t *key_identifier;	/* in: key to update/delete; out: new id */
    uint32_t kek_identifier;	/* KEK key id; 0 with a root KEK flag */
    uint16_t input_size;	/* IV (12) + ciphertext + tag (16); 0 for delete */
    hsm_op_manage_key_flags_t flags;
    hsm_key_type_t key_type;
    hsm_key_group_t key_group;	/* create only, else 0 */
    hsm_key_info_t key_info;	/* replaces the old value on update; 0 for delete */
    uint8_t *input_data;	/* IV || AES-GCM(KEK, key) || tag, AAD empty */
} op_manage_key_args_t;

typedef struct {
    hsm_key_group_t key_group;
    hsm_op_manage_key_group_flags_t flags;
    uint8_t reserved;
} op_manage_key_group_args_t;

typedef struct {
    uint32_t key_identifier;		/* master key to expand */
    uint8_t *expansion_function_value;
    uint8_t *hash_value;		/* implicit certificates only, else NULL */
    uint8_t *pr_reconstruction_value;	/* implicit certificates only, else NULL */
    uint8_t expansion_function_value_size;
    uint8_t hash_value_size;
    uint8_t pr_reconstruction_value_size;
    hsm_op_but_key_exp_flags_t flags;
    uint32_t *dest_key_identifier;	/* in: key to update; out: new id */
    uint8_t *output;			/* public key x||y, or NULL */
    uint16_t output_size;		/* 0: no public key output */
    hsm_key_type_t key_type;
    uint8_t reserved;
    hsm_key_group_t key_group;
    hsm_key_info_t key_info;
} op_butt_key_exp_args_t;

hsm_err_t hsm_open_key_management_service(hsm_hdl_t key_store_hdl,
	open_svc_key_management_args_t *args, hsm_hdl_t *key_management_hdl);
hsm_err_t hsm_generate_key(hsm_hdl_t key_management_hdl, op_generate_key_args_t *args);
hsm_err_t hsm_manage_key(hsm_hdl_t key_management_hdl, op_manage_key_args_t *args);
hsm_err_t hsm_manage_key_group(hsm_hdl_t key_management_hdl, op_manage_key_group_args_t *args);
hsm_err_t hsm_butterfly_key_expansion(hsm_hdl_t key_management_hdl, op_butt_key_exp_args_t *args);
hsm_err_t hsm_close_key_management_service(hsm_hdl_t key_management_hdl);

/* ------------------------------------------------------------------ */
/* Ciphering                                                            */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_cipher_flags_t;
typedef uint8_t hsm_op_cipher_one_go_algo_t;
typedef uint8_t hsm_op_cipher_one_go_flags_t;
typedef uint8_t hsm_op_auth_enc_algo_t;
typedef uint8_t hsm_op_auth_enc_flags_t;
typedef uint8_t hsm_op_ecies_dec_flags_t;

#define HSM_CIPHER_ONE_GO_ALGO_AES_ECB ((hsm_op_cipher_one_go_algo_t)(0x00))
#define HSM_CIPHER_ONE_GO_ALGO_AES_CBC ((hsm_op_cipher_one_go_algo_t)(0x01))
/* AES CCM with Adata = 0, Tlen = 16 bytes, nonce = 12 bytes. */
#define HSM_CIPHER_ONE_GO_ALGO_AES_CCM ((hsm_op_cipher_one_go_algo_t)(0x04))
#define HSM_CIPHER_ONE_GO_FLAGS_DECRYPT ((hsm_op_cipher_one_go_flags_t)(0u << 0))
#define HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT ((hsm_op_cipher_one_go_flags_t)(1u << 0))
/* AES GCM with AAD, tag = 16 bytes, IV = 12 bytes. */
#define HSM_AUTH_ENC_ALGO_AES_GCM ((hsm_op_auth_enc_algo_t)(0x00))
#define HSM_AUTH_ENC_FLAGS_DECRYPT ((hsm_op_auth_enc_flags_t)(0u << 0))
#define HSM_AUTH_ENC_FLAGS_ENCRYPT ((hsm_op_auth_enc_flags_t)(1u << 0))

typedef struct {
    hsm_svc_cipher_flags_t flags;
    uint8_t reserved[3];
} open_svc_cipher_args_t;

typedef struct {
    uint32_t key_identifier;
    uint8_t *iv;		/* IV; the nonce for CCM */
    uint16_t iv_size;		/* 0 for ECB, 16 for CBC, 12 for CCM */
    hsm_op_cipher_one_go_algo_t cipher_algo;
    hsm_op_cipher_one_go_flags_t flags;
    uint8_t *input;		/* CCM decrypt: ciphertext || tag */
    uint8_t *output;		/* CCM encrypt: ciphertext || tag */
    uint32_t input_size;
    uint32_t output_size;
} op_cipher_one_go_args_t;

typedef struct {
    uint32_t key_identifier;
    uint8_t *iv;
    uint16_t iv_size;		/* must be 12 */
    uint8_t *aad;
    uint16_t aad_size;
    hsm_op_auth_enc_algo_t ae_algo;
    hsm_op_auth_enc_flags_t flags;
    uint8_t *input;		/* plaintext, or ciphertext || tag (16) */
    uint8_t *output;		/* ciphertext || tag (16), or plaintext */
    uint32_t input_size;
    uint32_t output_size;
} op_auth_enc_args_t;

typedef struct {
    uint32_t key_identifier;	/* recipient private key */
    uint8_t *input;		/* VCT: V (64) || C (16) || T (16) */
    uint8_t *p1;		/* KDF parameter P1 */
    uint8_t *p2;		/* MAC parameter P2: NULL */
    uint8_t *output;		/* plaintext */
    uint32_t input_size;	/* 96 */
    uint32_t output_size;	/* 16 */
    uint16_t p1_size;		/* 32 */
    uint16_t p2_size;		/* 0 */
    uint16_t mac_size;		/* 16 */
    hsm_key_type_t key_type;	/* NIST P-256 or Brainpool r1 256 */
    hsm_op_ecies_dec_flags_t flags;
} op_ecies_dec_args_t;

hsm_err_t hsm_open_cipher_service(hsm_hdl_t key_store_hdl,
	open_svc_cipher_args_t *args, hsm_hdl_t *cipher_hdl);
hsm_err_t hsm_cipher_one_go(hsm_hdl_t cipher_hdl, op_cipher_one_go_args_t *args);
hsm_err_t hsm_auth_enc(hsm_hdl_t cipher_hdl, op_auth_enc_args_t *args);
hsm_err_t hsm_ecies_decryption(hsm_hdl_t cipher_hdl, op_ecies_dec_args_t *args);
hsm_err_t hsm_close_cipher_service(hsm_hdl_t cipher_hdl);

/* ------------------------------------------------------------------ */
/* Signature generation                                                 */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_signature_generation_flags_t;
typedef uint8_t hsm_signature_scheme_id_t;
typedef uint8_t hsm_op_generate_sign_flags_t;
typedef uint8_t hsm_op_prepare_signature_flags_t;

/* Scheme ids: values of NXP's header (the seed lists no values). */
#define HSM_SIGNATURE_SCHEME_ECDSA_NIST_P224_SHA_256        ((hsm_signature_scheme_id_t)0x01) /* not supported */
#define HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256        ((hsm_signature_scheme_id_t)0x02)
#define HSM_SIGNATURE_SCHEME_ECDSA_NIST_P384_SHA_384        ((hsm_signature_scheme_id_t)0x03)
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_224_SHA_256 ((hsm_signature_scheme_id_t)0x12) /* not supported */
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_256_SHA_256 ((hsm_signature_scheme_id_t)0x13)
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_384_SHA_384 ((hsm_signature_scheme_id_t)0x15)
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_224_SHA_256 ((hsm_signature_scheme_id_t)0x22) /* not supported */
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_256_SHA_256 ((hsm_signature_scheme_id_t)0x23) /* not supported */
#define HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_384_SHA_384 ((hsm_signature_scheme_id_t)0x25)

#define HSM_OP_GENERATE_SIGN_FLAGS_INPUT_DIGEST           ((hsm_op_generate_sign_flags_t)(0u << 0))
#define HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE          ((hsm_op_generate_sign_flags_t)(1u << 0))
#define HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT       ((hsm_op_generate_sign_flags_t)(1u << 1))
#define HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE  ((hsm_op_generate_sign_flags_t)(1u << 2))
#define HSM_OP_PREPARE_SIGN_INPUT_DIGEST     ((hsm_op_prepare_signature_flags_t)(0u << 0))
#define HSM_OP_PREPARE_SIGN_INPUT_MESSAGE    ((hsm_op_prepare_signature_flags_t)(1u << 0))
#define HSM_OP_PREPARE_SIGN_COMPRESSED_POINT ((hsm_op_prepare_signature_flags_t)(1u << 1))

typedef struct {
    hsm_svc_signature_generation_flags_t flags;
    uint8_t reserved[3];
} open_svc_sign_gen_args_t;

typedef struct {
    uint32_t key_identifier;
    uint8_t *message;		/* message or digest */
    uint8_t *signature;		/* r || s || Ry */
    uint32_t message_size;
    uint16_t signature_size;	/* 2 * coordinate size + 1 */
    hsm_signature_scheme_id_t scheme_id;
    hsm_op_generate_sign_flags_t flags;
} op_generate_sign_args_t;

typedef struct {
    hsm_signature_scheme_id_t scheme_id;
    hsm_op_prepare_signature_flags_t flags;
    uint16_t reserved;
} op_prepare_sign_args_t;

hsm_err_t hsm_open_signature_generation_service(hsm_hdl_t key_store_hdl,
	open_svc_sign_gen_args_t *args, hsm_hdl_t *signature_gen_hdl);
hsm_err_t hsm_close_signature_generation_service(hsm_hdl_t signature_gen_hdl);
hsm_err_t hsm_generate_signature(hsm_hdl_t signature_gen_hdl, op_generate_sign_args_t *args);
hsm_err_t hsm_prepare_signature(hsm_hdl_t signature_gen_hdl, op_prepare_sign_args_t *args);

/* ------------------------------------------------------------------ */
/* Signature verification                                               */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_signature_verification_flags_t;
typedef uint8_t hsm_op_verify_sign_flags_t;
typedef uint32_t hsm_verification_status_t;
typedef uint8_t hsm_op_import_public_key_flags_t;

#define HSM_OP_VERIFY_SIGN_FLAGS_INPUT_DIGEST     ((hsm_op_verify_sign_flags_t)(0u << 0))
#define HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE    ((hsm_op_verify_sign_flags_t)(1u << 0))
#define HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT ((hsm_op_verify_sign_flags_t)(1u << 1))
#define HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL     ((hsm_op_verify_sign_flags_t)(1u << 2))
#define HSM_VERIFICATION_STATUS_SUCCESS ((hsm_verification_status_t)(0x5A3CC3A5))

typedef struct {
    hsm_svc_signature_verification_flags_t flags;
    uint8_t reserved[3];
} open_svc_sign_ver_args_t;

typedef struct {
    uint8_t *key;		/* x || y, or a 4-byte reference with KEY_INTERNAL */
    uint8_t *message;
    uint8_t *signature;		/* r || s || Ry */
    uint16_t key_size;
    uint16_t signature_size;
    uint32_t message_size;
    hsm_signature_scheme_id_t scheme_id;
    hsm_op_verify_sign_flags_t flags;
    uint16_t reserved;
} op_verify_sign_args_t;

typedef struct {
    uint8_t *key;		/* x || y */
    uint16_t key_size;
    hsm_key_type_t key_type;
    hsm_op_import_public_key_flags_t flags;
} op_import_public_key_args_t;

hsm_err_t hsm_open_signature_verification_service(hsm_hdl_t session_hdl,
	open_svc_sign_ver_args_t *args, hsm_hdl_t *signature_ver_hdl);
hsm_err_t hsm_verify_signature(hsm_hdl_t signature_ver_hdl,
	op_verify_sign_args_t *args, hsm_verification_status_t *status);
hsm_err_t hsm_import_public_key(hsm_hdl_t signature_ver_hdl,
	op_import_public_key_args_t *args, uint32_t *key_ref);
hsm_err_t hsm_close_signature_verification_service(hsm_hdl_t signature_ver_hdl);

/* ------------------------------------------------------------------ */
/* Random number generation                                             */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_rng_flags_t;

typedef struct {
    hsm_svc_rng_flags_t flags;
    uint8_t reserved[3];
} open_svc_rng_args_t;

typedef struct {
    uint8_t *output;
    uint32_t random_size;
} op_get_random_args_t;

hsm_err_t hsm_open_rng_service(hsm_hdl_t session_hdl, open_svc_rng_args_t *args,
	hsm_hdl_t *rng_hdl);
hsm_err_t hsm_close_rng_service(hsm_hdl_t rng_hdl);
hsm_err_t hsm_get_random(hsm_hdl_t rng_hdl, op_get_random_args_t *args);

/* ------------------------------------------------------------------ */
/* Hashing                                                              */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_hash_flags_t;
typedef uint8_t hsm_hash_algo_t;
typedef uint8_t hsm_op_hash_one_go_flags_t;

#define HSM_HASH_ALGO_SHA_224 ((hsm_hash_algo_t)(0x0))
#define HSM_HASH_ALGO_SHA_256 ((hsm_hash_algo_t)(0x1))
#define HSM_HASH_ALGO_SHA_384 ((hsm_hash_algo_t)(0x2))
#define HSM_HASH_ALGO_SHA_512 ((hsm_hash_algo_t)(0x3))

typedef struct {
    hsm_svc_hash_flags_t flags;
    uint8_t reserved[3];
} open_svc_hash_args_t;

typedef struct {
    uint8_t *input;
    uint8_t *output;
    uint32_t input_size;
    uint32_t output_size;	/* must equal the digest size */
    hsm_hash_algo_t algo;
    hsm_op_hash_one_go_flags_t flags;
    uint16_t reserved;
} op_hash_one_go_args_t;

hsm_err_t hsm_open_hash_service(hsm_hdl_t session_hdl, open_svc_hash_args_t *args,
	hsm_hdl_t *hash_hdl);
hsm_err_t hsm_close_hash_service(hsm_hdl_t hash_hdl);
hsm_err_t hsm_hash_one_go(hsm_hdl_t hash_hdl, op_hash_one_go_args_t *args);

/* ------------------------------------------------------------------ */
/* Public key reconstruction, decompression, ECIES encryption, recovery */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_op_pub_key_rec_flags_t;
typedef uint8_t hsm_op_pub_key_dec_flags_t;
typedef uint8_t hsm_op_ecies_enc_flags_t;
typedef uint8_t hsm_op_pub_key_recovery_flags_t;

typedef struct {
    uint8_t *pub_rec;		/* public reconstruction value */
    uint8_t *hash;
    uint8_t *ca_key;
    uint8_t *out_key;		/* pub_rec * hash + ca_key */
    uint16_t pub_rec_size;
    uint16_t hash_size;
    uint16_t ca_key_size;
    uint16_t out_key_size;
    hsm_key_type_t key_type;
    hsm_op_pub_key_rec_flags_t flags;
    uint16_t reserved;
} op_pub_key_rec_args_t;

typedef struct {
    uint8_t *key;		/* x || lsb_y (one byte, 0 or 1) */
    uint8_t *out_key;		/* x || y */
    uint16_t key_size;
    uint16_t out_key_size;
    hsm_key_type_t key_type;
    hsm_op_pub_key_dec_flags_t flags;
    uint16_t reserved;
} op_pub_key_dec_args_t;

typedef struct {
    uint8_t *input;		/* 16-byte plaintext */
    uint8_t *pub_key;		/* recipient x || y (64) */
    uint8_t *p1;		/* KDF parameter P1 (32) */
    uint8_t *p2;		/* NULL */
    uint8_t *output;		/* VCT (96) */
    uint32_t input_size;
    uint16_t p1_size;
    uint16_t p2_size;
    uint16_t pub_key_size;
    uint16_t mac_size;
    uint32_t out_size;
    hsm_key_type_t key_type;
    hsm_op_ecies_enc_flags_t flags;
    uint16_t reserved;
} op_ecies_enc_args_t;

typedef struct {
    uint32_t key_identifier;
    uint8_t *out_key;		/* x || y */
    uint16_t out_key_size;
    hsm_key_type_t key_type;
    hsm_op_pub_key_recovery_flags_t flags;
} op_pub_key_recovery_args_t;

hsm_err_t hsm_pub_key_reconstruction(hsm_hdl_t session_hdl, op_pub_key_rec_args_t *args);
hsm_err_t hsm_pub_key_decompression(hsm_hdl_t session_hdl, op_pub_key_dec_args_t *args);
hsm_err_t hsm_ecies_encryption(hsm_hdl_t session_hdl, op_ecies_enc_args_t *args);
hsm_err_t hsm_pub_key_recovery(hsm_hdl_t key_store_hdl, op_pub_key_recovery_args_t *args);

/* ------------------------------------------------------------------ */
/* Data storage                                                         */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_data_storage_flags_t;
typedef uint8_t hsm_op_data_storage_flags_t;

#define HSM_OP_DATA_STORAGE_FLAGS_STORE    ((hsm_op_data_storage_flags_t)(1u << 0))
#define HSM_OP_DATA_STORAGE_FLAGS_RETRIEVE ((hsm_op_data_storage_flags_t)(0u << 0))

typedef struct {
    hsm_svc_data_storage_flags_t flags;
    uint8_t reserved[3];
} open_svc_data_storage_args_t;

typedef struct {
    uint8_t *data;		/* data to store, or buffer to retrieve into */
    uint32_t data_size;
    uint16_t data_id;
    hsm_op_data_storage_flags_t flags;
    uint8_t reserved;
} op_data_storage_args_t;

hsm_err_t hsm_open_data_storage_service(hsm_hdl_t key_store_hdl,
	open_svc_data_storage_args_t *args, hsm_hdl_t *data_storage_hdl);
hsm_err_t hsm_data_storage(hsm_hdl_t data_storage_hdl, op_data_storage_args_t *args);
hsm_err_t hsm_close_data_storage_service(hsm_hdl_t data_storage_hdl);

/* ------------------------------------------------------------------ */
/* Root KEK export                                                      */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_op_export_root_kek_flags_t;
#define HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK ((hsm_op_export_root_kek_flags_t)(1u << 0))
#define HSM_OP_EXPORT_ROOT_KEK_FLAGS_UNIQUE_KEK ((hsm_op_export_root_kek_flags_t)(0u << 0))

typedef struct {
    uint8_t *signed_message;	/* authorizes the export */
    uint8_t *out_root_kek;
    uint16_t signed_msg_size;
    uint16_t root_kek_size;	/* must be 32 */
    hsm_op_export_root_kek_flags_t flags;
    uint8_t reserved[3];
} op_export_root_kek_args_t;

hsm_err_t hsm_export_root_key_encryption_key(hsm_hdl_t session_hdl,
	op_export_root_kek_args_t *args);

/* ------------------------------------------------------------------ */
/* Get info                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t *user_sab_id;
    uint8_t *chip_unique_id;		/* 8 bytes */
    uint16_t *chip_monotonic_counter;
    uint16_t *chip_life_cycle;
    uint32_t *version;
    uint32_t *version_ext;
    uint8_t *fips_mode;
} op_get_info_args_t;

hsm_err_t hsm_get_info(hsm_hdl_t session_hdl, op_get_info_args_t *args);

/* ------------------------------------------------------------------ */
/* MAC                                                                  */
/* ------------------------------------------------------------------ */

typedef uint8_t hsm_svc_mac_flags_t;
typedef uint8_t hsm_op_mac_one_go_algo_t;
typedef uint8_t hsm_op_mac_one_go_flags_t;
typedef uint32_t hsm_mac_verification_status_t;

#define HSM_OP_MAC_ONE_GO_FLAGS_MAC_VERIFICATION ((hsm_op_mac_one_go_flags_t)(0u << 0))
#define HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION   ((hsm_op_mac_one_go_flags_t)(1u << 0))
#define HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC ((hsm_op_mac_one_go_algo_t)(0x01))
#define HSM_MAC_VERIFICATION_STATUS_SUCCESS ((hsm_mac_verification_status_t)(0x6C1AA1C6))

typedef struct {
    hsm_svc_mac_flags_t flags;
    uint8_t reserved[3];
} open_svc_mac_args_t;

typedef struct {
    uint32_t key_identifier;
    hsm_op_mac_one_go_algo_t algorithm;
    hsm_op_mac_one_go_flags_t flags;
    uint8_t *payload;
    uint8_t *mac;
    uint16_t payload_size;
    uint16_t mac_size;		/* 4..16 */
} op_mac_one_go_args_t;

hsm_err_t hsm_open_mac_service(hsm_hdl_t key_store_hdl, open_svc_mac_args_t *args,
	hsm_hdl_t *mac_hdl);
hsm_err_t hsm_mac_one_go(hsm_hdl_t mac_hdl, op_mac_one_go_args_t *args,
	hsm_mac_verification_status_t *status);
hsm_err_t hsm_close_mac_service(hsm_hdl_t mac_hdl);

/* ------------------------------------------------------------------ */
/* spps extensions                                                      */
/* ------------------------------------------------------------------ */

/*
 * hsm_spps_set_state_dir --
 *	Selects the HSM that the next hsm_open_session of this thread opens:
 *	its state directory (created on first use).  NULL restores the default:
 *	$SPPS_HSM_DIR, else $SPPS_HOME/hsm/default, else ~/.spps/hsm/default.
 */
hsm_err_t hsm_spps_set_state_dir(const char *dir);

/*
 * hsm_spps_open_session_at --
 *	hsm_open_session on the HSM whose state is in dir.
 */
hsm_err_t hsm_spps_open_session_at(const char *dir, open_session_args_t *args,
	hsm_hdl_t *session_hdl);

/* The enumerator name of an error code ("HSM_KEY_STORE_AUTH"), and a
 * sentence saying what it means.  Never NULL. */
const char *hsm_spps_err_name(hsm_err_t err);
const char *hsm_spps_err_text(hsm_err_t err);

/*
 * hsm_spps_last_error --
 *	A sentence about the last error this thread got from the engine that
 *	says what was wrong and where ("key group 3: file group-0003 fails
 *	authentication"), or "" if the last call succeeded.
 */
const char *hsm_spps_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* SPPS_HSM_API_H */
