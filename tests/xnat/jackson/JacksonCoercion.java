// Ask the real Jackson (Debian's libjackson2-databind-java) what XNAT's ObjectMapper does with
// one JSON value for one Java type of Command.CommandCreation's creator parameters.
// Input lines: KIND TAB base64(JSON value). Output lines: OK | ERR <exception class>, or for
// KIND "default" (a select-many default read by a plain ObjectMapper as List<String>):
// LIST <json> | IOEXCEPTION | THROW <exception class>.
import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

public class JacksonCoercion {
    // Guava's ImmutableList/ImmutableSet/ImmutableMap.copyOf refuse null elements and values.
    static void noNulls(Collection<?> values) {
        if (values != null) {
            values.forEach(Objects::requireNonNull);
        }
    }

    public static class Text {
        @JsonCreator public Text(@JsonProperty("v") String v) { }
    }
    public static class Whole {
        @JsonCreator public Whole(@JsonProperty("v") Long v) { }
    }
    public static class Real {
        @JsonCreator public Real(@JsonProperty("v") Double v) { }
    }
    public static class Flag {
        @JsonCreator public Flag(@JsonProperty("v") Boolean v) { }
    }
    public static class Texts {
        @JsonCreator public Texts(@JsonProperty("v") List<String> v) { noNulls(v); }
    }
    public static class TextSet {
        @JsonCreator public TextSet(@JsonProperty("v") Set<String> v) { noNulls(v); }
    }
    public static class TextMap {
        @JsonCreator public TextMap(@JsonProperty("v") Map<String, String> v) {
            noNulls(v == null ? null : v.values());
        }
    }

    public static void main(String[] args) throws IOException {
        // As the XNAT framework's SerializerConfig.objectMapperBuilder configures it, plus the
        // two features Spring's Jackson2ObjectMapperBuilder turns off by default.
        final ObjectMapper xnat = new ObjectMapper();
        xnat.configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
        xnat.configure(MapperFeature.DEFAULT_VIEW_INCLUSION, false);
        xnat.configure(JsonParser.Feature.ALLOW_SINGLE_QUOTES, true);
        xnat.configure(JsonParser.Feature.ALLOW_YAML_COMMENTS, true);
        final ObjectMapper plain = new ObjectMapper();  // Command.java's own static mapper

        final BufferedReader in = new BufferedReader(
                new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            final String[] parts = line.split("\t", 2);
            final String kind = parts[0];
            final String json = new String(Base64.getDecoder().decode(parts[1]),
                    StandardCharsets.UTF_8);
            if (kind.equals("default") || kind.equals("default-null")) {
                try {
                    final List<String> list = plain.readValue(
                            kind.equals("default") ? json : null,
                            new TypeReference<List<String>>() { });
                    System.out.println(list == null ? "NULL" : "LIST " + plain.writeValueAsString(list));
                } catch (IOException e) {
                    System.out.println("IOEXCEPTION");
                } catch (RuntimeException e) {
                    System.out.println("THROW " + e.getClass().getSimpleName());
                }
                continue;
            }
            final Class<?> target;
            switch (kind) {
                case "string": target = Text.class; break;
                case "long": target = Whole.class; break;
                case "double": target = Real.class; break;
                case "boolean": target = Flag.class; break;
                case "list": target = Texts.class; break;
                case "set": target = TextSet.class; break;
                case "map": target = TextMap.class; break;
                default: throw new IllegalArgumentException(kind);
            }
            try {
                xnat.readValue("{\"v\": " + json + "}", target);
                System.out.println("OK");
            } catch (Exception e) {
                System.out.println("ERR " + e.getClass().getSimpleName());
            }
        }
    }
}
