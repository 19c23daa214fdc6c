/*
 * hsm_error.c --
 *
 *	The engine's error vocabulary: the name and meaning of every hsm_err_t
 *	code, and the thread's last error detail, the sentence that says what
 *	was wrong and where (hsm_spps_last_error).
 */

#include "hsm_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

typedef struct ErrInfo {
    hsm_err_t code;
    const char *name;
    const char *text;
} ErrInfo;

static const ErrInfo errInfo[] = {
    {HSM_NO_ERROR, "HSM_NO_ERROR", "success"},
    {HSM_INVALID_MESSAGE, "HSM_INVALID_MESSAGE",
	"the message is invalid or unknown"},
    {HSM_INVALID_ADDRESS, "HSM_INVALID_ADDRESS",
	"a required pointer is NULL or an address is invalid"},
    {HSM_UNKNOWN_ID, "HSM_UNKNOWN_ID", "the identifier is not known"},
    {HSM_INVALID_PARAM, "HSM_INVALID_PARAM", "a parameter is invalid"},
    {HSM_NVM_ERROR, "HSM_NVM_ERROR",
	"the NVM (the state directory) cannot be read or written, or a "
	"device file is corrupt"},
    {HSM_OUT_OF_MEMORY, "HSM_OUT_OF_MEMORY",
	"not enough memory for the operation (key group cache or key group "
	"full)"},
    {HSM_UNKNOWN_HANDLE, "HSM_UNKNOWN_HANDLE",
	"unknown session or service handle"},
    {HSM_UNKNOWN_KEY_STORE, "HSM_UNKNOWN_KEY_STORE",
	"the key store does not exist and the create flag is not set"},
    {HSM_KEY_STORE_AUTH, "HSM_KEY_STORE_AUTH",
	"key store authentication failed"},
    {HSM_KEY_STORE_ERROR, "HSM_KEY_STORE_ERROR",
	"the key store content is damaged, tampered with or rolled back"},
    {HSM_ID_CONFLICT, "HSM_ID_CONFLICT",
	"an element with this identifier already exists, or an update "
	"changes the key type"},
    {HSM_RNG_NOT_STARTED, "HSM_RNG_NOT_STARTED",
	"the internal random generator is not started"},
    {HSM_CMD_NOT_SUPPORTED, "HSM_CMD_NOT_SUPPORTED",
	"the command is not supported in this configuration"},
    {HSM_INVALID_LIFECYCLE, "HSM_INVALID_LIFECYCLE",
	"the operation is not allowed in the device's lifecycle"},
    {HSM_KEY_STORE_CONFLICT, "HSM_KEY_STORE_CONFLICT",
	"a key store with this identifier already exists"},
    {HSM_KEY_STORE_COUNTER, "HSM_KEY_STORE_COUNTER",
	"warning: the operation succeeded, but the key store has used its "
	"monotonic counter updates, so it is not rollback-protected"},
    {HSM_FEATURE_NOT_SUPPORTED, "HSM_FEATURE_NOT_SUPPORTED",
	"the feature is not supported"},
    {HSM_GENERAL_ERROR, "HSM_GENERAL_ERROR", "general error"},
};

/* The thread's last error detail. */
static HSM_THREAD_LOCAL char lastError[1024];

static const ErrInfo *
FindErr(hsm_err_t err)
{
    size_t i;

    for (i = 0; i < sizeof(errInfo) / sizeof(errInfo[0]); i++) {
	if (errInfo[i].code == err) {
	    return &errInfo[i];
	}
    }
    return NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_spps_err_name, hsm_spps_err_text --
 *	The enumerator name and the meaning of an error code; an unknown
 *	code gets "HSM_UNKNOWN_ERROR" and a sentence saying so.
 *
 *----------------------------------------------------------------------
 */

const char *
hsm_spps_err_name(hsm_err_t err)
{
    const ErrInfo *e = FindErr(err);

    return e ? e->name : "HSM_UNKNOWN_ERROR";
}

const char *
hsm_spps_err_text(hsm_err_t err)
{
    const ErrInfo *e = FindErr(err);

    return e ? e->text : "unknown error code";
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fail --
 *	Records the detail of an error for this thread and returns the code.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fail(hsm_err_t err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(lastError, sizeof(lastError), fmt, ap);
    va_end(ap);
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fail_wrap --
 *	Records "<formatted text>: <previous detail>": the caller says where,
 *	the helper that failed has said what.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fail_wrap(hsm_err_t err, const char *fmt, ...)
{
    char inner[sizeof(lastError)];
    const char *tail;
    size_t n, t;
    va_list ap;

    memcpy(inner, lastError, sizeof(inner));
    tail = inner[0] != '\0' ? inner : hsm_spps_err_text(err);
    va_start(ap, fmt);
    vsnprintf(lastError, sizeof(lastError) / 2, fmt, ap);
    va_end(ap);
    n = strlen(lastError);
    t = strlen(tail);
    if (n + 2 + t >= sizeof(lastError)) {
	t = sizeof(lastError) - n - 3;
    }
    memcpy(lastError + n, ": ", 2);
    memcpy(lastError + n + 2, tail, t);
    lastError[n + 2 + t] = '\0';
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fail_ossl --
 *	HSM_GENERAL_ERROR with OpenSSL's reason for its most recent error,
 *	and OpenSSL's error queue emptied.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fail_ossl(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256];

    if (e != 0) {
	ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(lastError, sizeof(lastError), "%s: OpenSSL: %s", what,
		reason);
    } else {
	snprintf(lastError, sizeof(lastError), "%s: OpenSSL failed without "
		"saying why", what);
    }
    ERR_clear_error();
    return HSM_GENERAL_ERROR;
}

void
hsm_clear_error(void)
{
    lastError[0] = '\0';
}

void
hsm_error_default(hsm_err_t err)
{
    if (err != HSM_NO_ERROR && lastError[0] == '\0') {
	snprintf(lastError, sizeof(lastError), "%s", hsm_spps_err_text(err));
    }
}

const char *
hsm_spps_last_error(void)
{
    return lastError;
}
