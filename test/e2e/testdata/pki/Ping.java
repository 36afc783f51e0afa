import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * Sends GET /_ping to a Docker TLS endpoint with JSSE, using a PKCS#12 key
 * store as the client identity and the last certificate of its chain (the
 * CA) as the only trust anchor. The host name is verified as HTTPS clients
 * do. Prints the status line and the body.
 *
 * Usage: java Ping.java KEYSTORE.p12 PASSWORD HOST PORT
 */
public class Ping {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyStore keyStore = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(args[0])) {
            keyStore.load(in, password);
        }
        String alias = keyStore.aliases().nextElement();
        Certificate[] chain = keyStore.getCertificateChain(alias);
        if (chain == null || chain.length < 2) {
            throw new IllegalStateException("key store chain has no CA certificate");
        }

        KeyStore trustStore = KeyStore.getInstance("PKCS12");
        trustStore.load(null, null);
        trustStore.setCertificateEntry("ca", chain[chain.length - 1]);

        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(keyStore, password);
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trustStore);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), trust.getTrustManagers(), null);

        String host = args[2];
        int port = Integer.parseInt(args[3]);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(host, port)) {
            SSLParameters params = socket.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(params);
            socket.startHandshake();

            OutputStream out = socket.getOutputStream();
            String request = "GET /_ping HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
            out.write(request.getBytes(StandardCharsets.US_ASCII));
            out.flush();

            ByteArrayOutputStream response = new ByteArrayOutputStream();
            socket.getInputStream().transferTo(response);
            String text = response.toString(StandardCharsets.US_ASCII);
            int end = text.indexOf("\r\n\r\n");
            String statusLine = text.substring(0, text.indexOf("\r\n"));
            String body = end < 0 ? "" : text.substring(end + 4);
            System.out.println(statusLine);
            System.out.println(body);
        }
    }
}
