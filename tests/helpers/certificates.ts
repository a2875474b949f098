/**
 * Certificates made for a test with Debian's `openssl`, in a temporary
 * directory removed by `remove()`: a CA, a server certificate for
 * 127.0.0.1 and localhost, and client certificates it signs. Nothing here is
 * committed or used anywhere else.
 *
 * @module
 */

export interface Pem {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: Pem;
  /** The CA's certificate as a file, for DELIVERY_CA_FILE. */
  caFile: string;
  /** For 127.0.0.1 and localhost, signed by the CA. */
  server: Pem;
  /** A client certificate signed by the CA, valid for `days` (default 30). */
  client(name: string, options?: { days?: number }): Promise<Pem>;
  remove(): Promise<void>;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A fresh CA with a server certificate; client certificates on demand. */
export async function testPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "dispatch-pki-" });
  const read = async (name: string) => await Deno.readTextFile(`${dir}/${name}`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const signed = async (name: string, subject: string, days: number, ext: string) => {
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
    await openssl(
      dir,
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      String(days),
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
    return { cert: await read(`${name}.pem`), key: await read(`${name}.key`) };
  };
  try {
    await openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "30",
      "-subj",
      "/CN=Dispatch Test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
    const server = await signed(
      "server",
      "/CN=localhost",
      30,
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    return {
      dir,
      ca: { cert: await read("ca.pem"), key: await read("ca.key") },
      caFile: `${dir}/ca.pem`,
      server,
      client: (name, { days = 30 } = {}) =>
        signed(name, `/CN=${name}/O=Dispatch Tests`, days, "extendedKeyUsage=clientAuth\n"),
      remove: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
}
