/*
 * A DTLS 1.2 PSK test client on Debian's mbedTLS 2.28 (libmbedtls-dev), for the resumption
 * interop tests. Built by test/helpers/mbedtls-client.ts into a temp dir; never committed built.
 *
 *   mbedtls-client HOST PORT
 *
 * Everything else comes from the environment, so that the key never reaches argv:
 *   PSK_IDENTITY      the PSK identity (required)
 *   PSK_KEY_HEX       the PSK in hex (required)
 *   COAP_REQUEST_HEX  bytes sent after each handshake; the reply (or "none") is printed
 *   RESUME            none (one connection), id (reconnect resuming by session ID, tickets
 *                     off) or ticket (reconnect resuming by RFC 5077 ticket). Default none.
 *   TAMPER_TICKET=1   flip one byte of the saved ticket before reconnecting (the server must
 *                     fall back to a full handshake)
 *   CIPHERSUITES      comma-separated mbedTLS suite names (default: the library's list)
 *   TIMEOUT_MS        read timeout and upper bound of the handshake retransmission timer
 *
 * Output, one line per event (the helper parses it):
 *   handshake N: ok suite=NAME ticket=yes|no session_id=HEX
 *   handshake N: failed -0xXXXX MESSAGE
 *   reply N: HEX | reply N: none
 *   resumed: yes|no offered=ticket|id
 * Exit status 0 when every handshake completed, 1 otherwise, 2 on a usage error.
 */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/timing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SUITES 32
#define MAX_HEX_BYTES 4096

static int hex_decode(const char *hex, unsigned char *out, size_t max, size_t *len) {
  size_t n = strlen(hex);
  if (n % 2 != 0 || n / 2 > max) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned int v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (unsigned char)v;
  }
  *len = n / 2;
  return 0;
}

static void print_hex(const unsigned char *buf, size_t len) {
  for (size_t i = 0; i < len; i++) printf("%02x", buf[i]);
}

static void print_error(int n, int ret) {
  char msg[160];
  mbedtls_strerror(ret, msg, sizeof msg);
  printf("handshake %d: failed -0x%04x %s\n", n, (unsigned)-ret, msg);
}

struct client {
  mbedtls_net_context net;
  mbedtls_ssl_context ssl;
  mbedtls_timing_delay_context timer;
};

/* One connection: connect from a fresh source port, handshake (resuming `resume` if given),
 * send the request, print the reply, close. Saves the session in `saved` for a reconnect. */
static int run_once(int n, mbedtls_ssl_config *conf, const char *host, const char *port, mbedtls_ssl_session *resume,
                    mbedtls_ssl_session *saved, const unsigned char *req, size_t req_len) {
  struct client c;
  int ok = 0, ret;
  mbedtls_net_init(&c.net);
  mbedtls_ssl_init(&c.ssl);
  if ((ret = mbedtls_ssl_setup(&c.ssl, conf)) != 0) goto out;
  if ((ret = mbedtls_net_connect(&c.net, host, port, MBEDTLS_NET_PROTO_UDP)) != 0) goto out;
  mbedtls_ssl_set_bio(&c.ssl, &c.net, mbedtls_net_send, mbedtls_net_recv, mbedtls_net_recv_timeout);
  mbedtls_ssl_set_timer_cb(&c.ssl, &c.timer, mbedtls_timing_set_delay, mbedtls_timing_get_delay);
  if (resume != NULL && (ret = mbedtls_ssl_set_session(&c.ssl, resume)) != 0) goto out;
  /* Bounded: mbedTLS gives up with MBEDTLS_ERR_SSL_TIMEOUT once the retransmission timer
   * passes the configured maximum. */
  do ret = mbedtls_ssl_handshake(&c.ssl);
  while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
  if (ret != 0) goto out;
  mbedtls_ssl_session_free(saved);
  mbedtls_ssl_session_init(saved);
  if ((ret = mbedtls_ssl_get_session(&c.ssl, saved)) != 0) goto out;
  printf("handshake %d: ok suite=%s ticket=%s session_id=", n, mbedtls_ssl_get_ciphersuite(&c.ssl),
         saved->ticket_len > 0 ? "yes" : "no");
  print_hex(saved->id, saved->id_len);
  printf("\n");
  ok = 1;
  if (req_len > 0) {
    unsigned char buf[2048];
    do ret = mbedtls_ssl_write(&c.ssl, req, req_len);
    while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    do ret = mbedtls_ssl_read(&c.ssl, buf, sizeof buf);
    while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    printf("reply %d: ", n);
    if (ret > 0) print_hex(buf, (size_t)ret);
    else printf("none");
    printf("\n");
  }
  do ret = mbedtls_ssl_close_notify(&c.ssl);
  while (ret == MBEDTLS_ERR_SSL_WANT_WRITE);
  ret = 0;
out:
  if (!ok) print_error(n, ret);
  fflush(stdout);
  mbedtls_ssl_free(&c.ssl);
  mbedtls_net_free(&c.net);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT (PSK_IDENTITY, PSK_KEY_HEX, ... in the environment)\n", argv[0]);
    return 2;
  }
  const char *identity = getenv("PSK_IDENTITY"), *key_hex = getenv("PSK_KEY_HEX");
  const char *req_hex = getenv("COAP_REQUEST_HEX"), *resume = getenv("RESUME");
  const char *suites_env = getenv("CIPHERSUITES"), *timeout_env = getenv("TIMEOUT_MS");
  const char *tamper = getenv("TAMPER_TICKET");
  unsigned char psk[64], req[MAX_HEX_BYTES];
  size_t psk_len, req_len = 0;
  if (identity == NULL || key_hex == NULL || hex_decode(key_hex, psk, sizeof psk, &psk_len) != 0) {
    fprintf(stderr, "PSK_IDENTITY and PSK_KEY_HEX (hex) are required\n");
    return 2;
  }
  if (req_hex != NULL && hex_decode(req_hex, req, sizeof req, &req_len) != 0) {
    fprintf(stderr, "COAP_REQUEST_HEX is not hex\n");
    return 2;
  }
  if (resume == NULL) resume = "none";
  if (strcmp(resume, "none") != 0 && strcmp(resume, "id") != 0 && strcmp(resume, "ticket") != 0) {
    fprintf(stderr, "RESUME must be none, id or ticket\n");
    return 2;
  }
  uint32_t timeout = timeout_env != NULL ? (uint32_t)strtoul(timeout_env, NULL, 10) : 3000;
  if (timeout < 100) timeout = 100;

  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ssl_config conf;
  mbedtls_ssl_session saved;
  unsigned char first_master[48];
  static int suites[MAX_SUITES + 1];
  int status = 1;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_ssl_config_init(&conf);
  mbedtls_ssl_session_init(&saved);
  if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)"h13p", 4) != 0) goto done;
  if (mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_DATAGRAM, MBEDTLS_SSL_PRESET_DEFAULT) != 0)
    goto done;
  mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
  mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3); /* DTLS 1.2 */
  mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE); /* PSK: no certificates */
  mbedtls_ssl_conf_read_timeout(&conf, timeout);
  mbedtls_ssl_conf_handshake_timeout(&conf, 250, timeout);
  mbedtls_ssl_conf_extended_master_secret(&conf, MBEDTLS_SSL_EXTENDED_MS_ENABLED);
  mbedtls_ssl_conf_session_tickets(&conf, strcmp(resume, "id") == 0 ? MBEDTLS_SSL_SESSION_TICKETS_DISABLED
                                                                    : MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
  if (suites_env != NULL) {
    char list[512];
    size_t count = 0;
    snprintf(list, sizeof list, "%s", suites_env);
    for (char *name = strtok(list, ","); name != NULL && count < MAX_SUITES; name = strtok(NULL, ",")) {
      int id = mbedtls_ssl_get_ciphersuite_id(name);
      if (id == 0) {
        fprintf(stderr, "unknown cipher suite %s\n", name);
        status = 2;
        goto done;
      }
      suites[count++] = id;
    }
    suites[count] = 0;
    mbedtls_ssl_conf_ciphersuites(&conf, suites);
  }
  if (mbedtls_ssl_conf_psk(&conf, psk, psk_len, (const unsigned char *)identity, strlen(identity)) != 0) goto done;

  if (!run_once(1, &conf, argv[1], argv[2], NULL, &saved, req, req_len)) goto done;
  if (strcmp(resume, "none") == 0) {
    status = 0;
    goto done;
  }
  const char *offered = saved.ticket_len > 0 ? "ticket" : "id";
  if (tamper != NULL && strcmp(tamper, "1") == 0 && saved.ticket_len > 0) saved.ticket[saved.ticket_len / 2] ^= 0x01;
  /* The first session's master secret, to compare with the second's. */
  memcpy(first_master, saved.master, sizeof first_master);
  mbedtls_ssl_session second;
  mbedtls_ssl_session_init(&second);
  int ok = run_once(2, &conf, argv[1], argv[2], &saved, &second, req, req_len);
  if (ok) {
    /* Resumed if and only if the second session kept the first one's master secret. */
    printf("resumed: %s offered=%s\n", memcmp(first_master, second.master, sizeof first_master) == 0 ? "yes" : "no", offered);
    status = 0;
  }
  mbedtls_ssl_session_free(&second);
done:
  fflush(stdout);
  mbedtls_platform_zeroize(first_master, sizeof first_master);
  mbedtls_ssl_session_free(&saved);
  mbedtls_ssl_config_free(&conf);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  mbedtls_platform_zeroize(psk, sizeof psk);
  return status;
}
