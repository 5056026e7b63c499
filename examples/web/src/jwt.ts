// Decoding a JWT for display, and checking its signature in the browser
// (WebCrypto) against the public JWK that Domain.get_public_key returns.

export interface Jwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

function base64UrlDecode(part: string): Uint8Array<ArrayBuffer> {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function decodeJwt(token: string): Jwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  const text = (p: string) => new TextDecoder().decode(base64UrlDecode(p));
  return {
    header: JSON.parse(text(parts[0])) as Record<string, unknown>,
    claims: JSON.parse(text(parts[1])) as Record<string, unknown>,
    signingInput: new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    signature: base64UrlDecode(parts[2]),
  };
}

type Algo = { importParams: AlgorithmIdentifier | RsaHashedImportParams | EcKeyImportParams; verifyParams: AlgorithmIdentifier | EcdsaParams };

const ALGORITHMS: Record<string, Algo> = {
  RS256: {
    importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    verifyParams: { name: "RSASSA-PKCS1-v1_5" },
  },
  ES256: {
    importParams: { name: "ECDSA", namedCurve: "P-256" },
    verifyParams: { name: "ECDSA", hash: "SHA-256" },
  },
  EdDSA: { importParams: { name: "Ed25519" }, verifyParams: { name: "Ed25519" } },
};

/**
 * Verifies `jwt` with the JWK (JSON text). The algorithm is the key's, never
 * the token's own claim: a token naming another `alg` fails.
 */
export async function verifyJwt(jwt: Jwt, publicJwk: string): Promise<{ ok: boolean; why: string }> {
  const jwk = JSON.parse(publicJwk) as JsonWebKey & { kid?: string; alg?: string };
  const alg = jwk.alg ?? (jwk.kty === "RSA" ? "RS256" : jwk.kty === "EC" ? "ES256" : "EdDSA");
  const algo = ALGORITHMS[alg];
  if (!algo) return { ok: false, why: `unsupported key algorithm ${alg}` };
  if (jwt.header.alg !== alg) return { ok: false, why: `token alg ${String(jwt.header.alg)} is not the key's ${alg}` };
  if (jwk.kid && jwt.header.kid !== jwk.kid) {
    return { ok: false, why: `token kid ${String(jwt.header.kid)} is not the current key ${jwk.kid}` };
  }
  if (!crypto.subtle) return { ok: false, why: "WebCrypto needs a secure context (https or localhost)" };
  const key = await crypto.subtle.importKey("jwk", jwk, algo.importParams, false, ["verify"]);
  const ok = await crypto.subtle.verify(algo.verifyParams, key, jwt.signature, jwt.signingInput);
  return { ok, why: ok ? `${alg}, kid ${jwk.kid ?? "?"}` : "signature does not match" };
}
