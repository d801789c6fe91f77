#!/bin/sh
# Makes the certificates the ingress security tests use, in directory $1:
#   ca.pem/ca.key        the client and server CA
#   server.pem/.key      CN server, SAN 127.0.0.1 and localhost, signed by ca
#   server2.pem/.key     the same names, another key (for the reload test)
#   <name>.pem/.key      client certificates with CN <name> (each further argument)
#   other-ca.pem, rogue.pem/.key   another CA and a client signed by it (CN app1)
#   expired.pem/.key     CN app1, signed by ca, valid only in 2020
#   twocn.pem/.key       CN app1 and CN app2, signed by ca
set -eu
d=$1
shift
cd "$d"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj /CN=jb-test-ca
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 30 -subj /CN=jb-other-ca
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
for s in server server2; do
  q openssl req -newkey rsa:2048 -nodes -keyout $s.key -out $s.csr -subj /CN=$s
  q openssl x509 -req -in $s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $s.pem -days 30 -extfile san.ext
done
client() { # name ca-prefix
  q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$3"
  q openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 30
}
for n in "$@"; do client "$n" ca "$n"; done
client rogue other-ca app1
# Two CNs, signed by ca: ambiguous, so it names no application.
client twocn ca "app1/CN=app2"
# An expired client certificate: `openssl ca` takes explicit dates.
mkdir -p cadb
: > cadb/index.txt
printf '1000\n' > cadb/serial
cat > cadb/ca.cnf <<CNF
[ ca ]
default_ca = c
[ c ]
dir = cadb
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
default_md = sha256
policy = p
unique_subject = no
[ p ]
commonName = supplied
CNF
q openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj /CN=app1
q openssl ca -batch -config cadb/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -notext
test -s expired.pem
