"""Send GET /_ping to a Docker TLS endpoint with Python's ssl module.

Uses strict X.509 verification (VERIFY_X509_STRICT, a default flag from
Python 3.13 on), which rejects a CA without keyUsage. Host names are matched
against the SANs only, as Python does since 3.7.

Usage: python3 ping.py CA CERT KEY HOST PORT
"""

import socket
import ssl
import sys


def main():
    ca, cert, key, host, port = sys.argv[1:6]
    context = ssl.create_default_context(cafile=ca)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(cert, key)
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            request = "GET /_ping HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host
            tls.sendall(request.encode("ascii"))
            chunks = []
            while True:
                data = tls.recv(4096)
                if not data:
                    break
                chunks.append(data)
    response = b"".join(chunks).decode("ascii", "replace")
    head, _, body = response.partition("\r\n\r\n")
    print(head.split("\r\n")[0])
    print(body)


if __name__ == "__main__":
    main()
