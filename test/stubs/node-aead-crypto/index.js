throw new Error('node-aead-crypto stand-in: node-dtls-client uses node:crypto on Node >= 10');
