#include <zmq.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN is a draft option in libzmq 4.3's header (zmq.h declares it only with ZMQ_BUILD_DRAFT_API),
   but the library understands it when built with the draft API, as Debian's libzmq5 4.3.4 is: the daemon sets it on
   every CURVE server socket and says so when the library refuses it (EINVAL). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* getxattr(2), which the Glibc module does not bring in: a secret certificate handed over by systemd's
   LoadCredential= may be readable through a POSIX ACL (CurveCertificate.readableByOwnerAndSelfOnly). */
#include <sys/xattr.h>
