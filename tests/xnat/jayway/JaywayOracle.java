// Test oracle: applies matchers with Jayway JsonPath the way XNAT's Container Service does.
//
// Container Service builds its JsonPath configuration from Jackson (JacksonJsonProvider and
// JacksonMappingProvider over one ObjectMapper, no Option flags) and filters a child list with
// "$.<children>[?(<matcher>)]" or one object with "$[?(<matcher>)]"
// (container-service CommandResolutionServiceImpl.java:176-180, 1954-1958 and 2107-2113).
//
// Input (stdin): one case a line, "<base64 matcher> <base64 JSON list of objects>".
// Output (stdout): one line a case, "OK <JSON list of the objects kept>" or
// "ERR <exception class> <base64 message>". The source names the library's package as
// com.jayway.jsonpath; the test compiles a copy with the package prefix of a relocated
// (shaded) build when it runs one.
import com.fasterxml.jackson.databind.ObjectMapper;
import com.jayway.jsonpath.Configuration;
import com.jayway.jsonpath.JsonPath;
import com.jayway.jsonpath.ParseContext;
import com.jayway.jsonpath.spi.json.JacksonJsonProvider;
import com.jayway.jsonpath.spi.mapper.JacksonMappingProvider;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

public final class JaywayOracle {
    private JaywayOracle() {
    }

    public static void main(String[] args) throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        Configuration configuration = Configuration.builder()
                .mappingProvider(new JacksonMappingProvider(mapper))
                .jsonProvider(new JacksonJsonProvider(mapper))
                .build();
        ParseContext context = JsonPath.using(configuration);
        Base64.Decoder decoder = Base64.getDecoder();
        Base64.Encoder encoder = Base64.getEncoder();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] parts = line.split(" ", 2);
            String matcher = new String(decoder.decode(parts[0]), StandardCharsets.UTF_8);
            String document = "{\"children\": " + new String(decoder.decode(parts[1]), StandardCharsets.UTF_8) + "}";
            try {
                Object kept = context.parse(document).read("$.children[?(" + matcher + ")]");
                out.println("OK " + mapper.writeValueAsString(kept));
            } catch (Throwable error) {
                String message = String.valueOf(error.getMessage());
                out.println("ERR " + error.getClass().getName() + " "
                        + encoder.encodeToString(message.getBytes(StandardCharsets.UTF_8)));
            }
        }
        out.flush();
    }
}
